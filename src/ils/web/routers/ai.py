"""The AI API (``/api/ai``): stored results, running AI jobs, and chat.

* Results (briefings, forecasts, anomalies, insights) are the company's: any role of
  the company may read them; another company's id answers 404.
* Running a job (``POST /api/ai/runs/{kind}``) is for managers: it queues work on the
  rate-limited ``ai`` queue for the whole company.
* Chat: a user's conversations are theirs alone. A question is stored first and the
  ``chat-response`` job names it by id, so the question's text never sits in Redis;
  the answer arrives as the conversation's next message, which
  ``GET .../messages?after=<id>&wait=<s>`` waits for (woken by the worker's signal on
  the event bus, with a database poll for workers it cannot hear).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Final

from fastapi import APIRouter, Query, Response

from ils.domain import ai_queries, chat_queries
from ils.domain.content import AIResultKind, Conversation
from ils.jobs.channels import CHAT as CHAT_CHANNEL
from ils.jobs.model import JobRef
from ils.web.deps import CurrentCompany, CurrentUser, ManagerUser, SessionDep, StateDep
from ils.web.schemas.ai import (
    AIResultOut,
    AnomalyRun,
    AskedOut,
    BriefingRun,
    ConversationCreate,
    ConversationOut,
    ForecastRun,
    InsightRun,
    MessageCreate,
    MessageOut,
    QueuedOut,
)
from ils.web.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, Page, RecordId, error_responses
from ils.web.services import chat
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/ai", tags=["ai"])

#: Longest a client may wait for an answer in one request.
WAIT_MAX_S: Final = 25.0


def _queued(ref: JobRef) -> QueuedOut:
    return QueuedOut(queue=ref.queue, name=ref.name, job_id=ref.job_id)


# -- results --------------------------------------------------------------------------


@router.get("/results", summary="List AI results", responses=error_responses(401))
async def list_results(
    company: CurrentCompany,
    session: SessionDep,
    kind: AIResultKind | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AIResultOut]:
    """The company's results, newest first (by the day they are for, then creation)."""
    rows, total = await ai_queries.list_results(session, company.id, kind, limit, offset)
    items = [AIResultOut.model_validate(row) for row in rows]
    return Page[AIResultOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/results/{result_id}", summary="One AI result", responses=error_responses(401, 404))
async def get_result(
    result_id: RecordId, company: CurrentCompany, session: SessionDep
) -> AIResultOut:
    row = await ai_queries.get_result(session, company.id, result_id)
    return AIResultOut.model_validate(row)


@router.get(
    "/briefings/{day}", summary="The briefing of a day", responses=error_responses(401, 404)
)
async def get_briefing(day: date, company: CurrentCompany, session: SessionDep) -> AIResultOut:
    """The newest briefing for ``day`` (``YYYY-MM-DD``, the company's local date)."""
    row = await ai_queries.newest_briefing(session, company.id, day)
    return AIResultOut.model_validate(row)


# -- runs -----------------------------------------------------------------------------


RUN_RESPONSES: Final = error_responses(401, 403)


@router.post(
    "/runs/daily-briefing",
    status_code=202,
    summary="Build a daily briefing",
    responses=RUN_RESPONSES,
)
async def run_briefing(
    body: BriefingRun,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> QueuedOut:
    """Queue the briefing of ``date`` (default: today in the company's zone)."""
    day = body.date or company.local_date(now_utc(state.clock))
    ref = await state.system.helpers.queue_daily_briefing(
        company.id, day, body.user_ids, session=session
    )
    return _queued(ref)


@router.post(
    "/runs/demand-forecast", status_code=202, summary="Forecast demand", responses=RUN_RESPONSES
)
async def run_forecast(
    body: ForecastRun,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> QueuedOut:
    ref = await state.system.helpers.queue_demand_forecast(
        company.id, body.forecast_days, body.product_ids, session=session
    )
    return _queued(ref)


@router.post(
    "/runs/anomaly-detection",
    status_code=202,
    summary="Look for anomalies",
    responses=RUN_RESPONSES,
)
async def run_anomalies(
    body: AnomalyRun,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> QueuedOut:
    ref = await state.system.helpers.queue_anomaly_detection(
        company.id, body.metric_type, body.time_range, session=session
    )
    return _queued(ref)


@router.post(
    "/runs/insight-generation",
    status_code=202,
    summary="Generate insights",
    responses=RUN_RESPONSES,
)
async def run_insights(
    body: InsightRun,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> QueuedOut:
    ref = await state.system.helpers.queue_insight_generation(
        company.id, body.insight_type, body.period_start, body.period_end, session=session
    )
    return _queued(ref)


# -- chat -----------------------------------------------------------------------------


def _conversation_out(row: Conversation, messages: list[MessageOut]) -> ConversationOut:
    # Built by hand: validating the row would touch its lazy ``messages`` relationship.
    return ConversationOut(
        id=row.id,
        title=row.title,
        created_at=row.created_at,
        updated_at=row.updated_at,
        messages=messages,
    )


@router.post(
    "/conversations", status_code=201, summary="Start a chat", responses=error_responses(401, 403)
)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, session: SessionDep, state: StateDep
) -> ConversationOut:
    conversation = await chat.start_conversation(session, user, body.title, now_utc(state.clock))
    return _conversation_out(conversation, [])


@router.get("/conversations", summary="List my chats", responses=error_responses(401))
async def list_conversations(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ConversationOut]:
    """Most recently active first; messages are on each chat's own page."""
    rows, total = await chat_queries.list_conversations(
        session, user.id, user.company_id, limit, offset
    )
    items = [_conversation_out(row, []) for row in rows]
    return Page[ConversationOut](items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/conversations/{conversation_id}",
    summary="One chat with its messages",
    responses=error_responses(401, 404),
)
async def get_conversation(
    conversation_id: RecordId, user: CurrentUser, session: SessionDep
) -> ConversationOut:
    row = await chat_queries.get_conversation(session, user.id, user.company_id, conversation_id)
    rows = await chat_queries.conversation_messages(session, row.id)
    return _conversation_out(row, [MessageOut.model_validate(m) for m in rows])


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    summary="Delete a chat",
    responses=error_responses(401, 403, 404),
)
async def delete_conversation(
    conversation_id: RecordId, user: CurrentUser, session: SessionDep
) -> Response:
    await chat.delete_conversation(session, user, conversation_id)
    return Response(status_code=204)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=202,
    summary="Ask a question",
    responses=error_responses(401, 403, 404, 429),
)
async def ask(
    conversation_id: RecordId,
    body: MessageCreate,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> AskedOut:
    """Stores the question and queues its answer (``chat-response``, the ai queue's most
    urgent job). 429 when the user asked more than five questions in the last minute."""
    message, ref = await chat.ask(
        session, state.system, user, conversation_id, body.content, now_utc(state.clock)
    )
    return AskedOut(message=MessageOut.model_validate(message), job=_queued(ref))


@router.get(
    "/conversations/{conversation_id}/messages",
    summary="Messages after one (waiting for the answer)",
    responses=error_responses(401, 404),
)
async def messages_after(
    conversation_id: RecordId,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    after: Annotated[str | None, Query(max_length=32, description="A message id.")] = None,
    wait: Annotated[float, Query(ge=0, le=WAIT_MAX_S, description="Seconds to wait.")] = 0,
) -> list[MessageOut]:
    """The messages after ``after`` (all without it); with ``wait``, an empty answer
    comes only after waiting that long for a new message."""
    conversation = await chat_queries.get_conversation(
        session, user.id, user.company_id, conversation_id
    )
    cursor = None
    if after is not None:
        cursor = await chat_queries.message_cursor(session, conversation.id, after)
    # The wait must not hold the request's transaction (SQLite's one write lock).
    await session.commit()
    db = state.notifications.db
    poll_s = state.settings.notifications.stream_poll_s
    deadline = time.monotonic() + wait
    async with state.system.events.subscribe(CHAT_CHANNEL) as signals:
        while True:
            async with db.read() as reader:
                rows = await chat_queries.conversation_messages(reader, conversation.id, cursor)
                found = [MessageOut.model_validate(m) for m in rows]
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            # Woken by any answer (or the poll): one cheap read tells whether it is ours.
            await signals.get(min(poll_s, remaining))
