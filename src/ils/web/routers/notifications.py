"""The signed-in user's in-app notifications (``/api/notifications``) and live stream.

Any role may: each user sees, marks and deletes only their own notifications (and
only those of their current company); anyone else's id answers 404 like an unknown
one. ``GET /api/notifications/stream`` is a Server-Sent Events stream of new
notifications (see :mod:`ils.web.live`); it ends when the session does.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from ils.domain import notification_queries as queries
from ils.domain.content import NotificationPriority
from ils.web.deps import CurrentAuth, CurrentUser, PagingDep, SessionDep, StateDep
from ils.web.live import notification_out
from ils.web.live_stream import NotificationStream
from ils.web.schemas.common import Page, RecordId, error_responses
from ils.web.schemas.notifications import MarkedOut, NotificationOut, UnreadCountOut
from ils.web.services import notifications as service
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

KIND_PATTERN: Final = r"^(system|order|ai-insight|marketplace)$"
#: Response headers of the stream: no caching, no proxy buffering.
STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("", summary="List my notifications", responses=error_responses(401))
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    unread: Annotated[bool | None, Query(description="Only unread (true) or read (false).")] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
    priority: NotificationPriority | None = None,
) -> Page[NotificationOut]:
    """Unread first, then newest first."""
    filters = queries.NotificationFilters(unread=unread, kind=kind, priority=priority)
    rows, total = await queries.list_notifications(
        session, user.id, user.company_id, filters, paging.limit, paging.offset
    )
    return paging.page(rows, total, notification_out)


@router.get(
    "/unread-count", summary="Count my unread notifications", responses=error_responses(401)
)
async def unread_count(user: CurrentUser, session: SessionDep) -> UnreadCountOut:
    """For the badge on the bell."""
    return UnreadCountOut(unread=await queries.count_unread(session, user.id, user.company_id))


@router.get(
    "/stream",
    summary="Live stream of my new notifications (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "notification events"},
        **error_responses(401),
    },
)
async def stream(
    auth: CurrentAuth,
    session: SessionDep,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Each event is ``event: notification``, ``id:`` the notification's id, ``data:``
    the notification as JSON. Reconnecting with ``Last-Event-ID`` replays what came
    after that event. A comment line every ``ILS_NOTIFICATIONS__STREAM_HEARTBEAT_S``
    keeps idle connections open; the stream ends when the session does (checked every
    heartbeat interval, for every stream of the process in one read). A session
    holds at most ``ILS_LIMITS__STREAMS_PER_SESSION`` streams, a user
    ``ILS_LIMITS__STREAMS_PER_USER`` (per web process): a new one closes the oldest,
    whose last event is ``event: closed``."""
    settings = state.settings.notifications
    db = state.notifications.db
    user = auth.user
    live = NotificationStream(
        state.notifications,
        db,
        settings,
        user.id,
        user.company_id,
        session_key=auth.session.id,
        caps=state.settings.limits,
    )
    await live.start_at(session, last_event_id)
    # The hub checks every stream's session each heartbeat interval and ends this one
    # when its session has ended (signed out, expired, user or company deactivated).
    return StreamingResponse(live.events(), media_type="text/event-stream", headers=STREAM_HEADERS)


@router.post(
    "/read-all", summary="Mark all my notifications read", responses=error_responses(401, 403)
)
async def mark_all_read(user: CurrentUser, session: SessionDep, state: StateDep) -> MarkedOut:
    """Returns how many were unread."""
    marked = await service.mark_all_read(session, user, now_utc(state.clock))
    return MarkedOut(marked=marked)


@router.post(
    "/{notification_id}/read",
    summary="Mark one notification read",
    responses=error_responses(401, 403, 404),
)
async def mark_read(
    notification_id: RecordId, user: CurrentUser, session: SessionDep, state: StateDep
) -> NotificationOut:
    """Idempotent: reading it again keeps the first time."""
    row = await service.mark_read(session, user, notification_id, now_utc(state.clock))
    return notification_out(row)


@router.delete(
    "/{notification_id}",
    status_code=204,
    summary="Delete one notification",
    responses=error_responses(401, 403, 404),
)
async def delete_notification(
    notification_id: RecordId, user: CurrentUser, session: SessionDep
) -> Response:
    """Gone for good (an urgent one is then never e-mailed)."""
    await service.delete_notification(session, user, notification_id)
    return Response(status_code=204)
