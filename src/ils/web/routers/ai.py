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
from datetime import date, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import Select, delete, func, select

from ils.domain.companies import User
from ils.domain.content import AIResult, AIResultKind, Conversation, Message, MessageRole
from ils.queue.model import JobRef
from ils.web.deps import (
    CurrentCompany,
    CurrentUser,
    ManagerUser,
    SessionDep,
    StateDep,
    not_found,
)
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
from ils.web.services.common import now_utc
from ils.workers.ai import CHAT_CHANNEL

router = APIRouter(prefix="/api/ai", tags=["ai"])

#: Longest a client may wait for an answer in one request.
WAIT_MAX_S: Final = 25.0
#: Questions one user may ask per minute, across conversations: the ai queue runs
#: 10 jobs a minute for everyone, so one user must not fill it.
QUESTIONS_PER_MINUTE: Final = 5
TOO_MANY: Final = "too many questions in the last minute; wait for the answers"


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
    query = select(AIResult).where(AIResult.company_id == company.id)
    if kind is not None:
        query = query.where(AIResult.kind == kind)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AIResult.day.desc(), AIResult.created_at.desc(), AIResult.id)
        .limit(limit)
        .offset(offset)
    )
    items = [AIResultOut.model_validate(row) for row in rows]
    return Page[AIResultOut](items=items, total=int(total or 0), limit=limit, offset=offset)


@router.get("/results/{result_id}", summary="One AI result", responses=error_responses(401, 404))
async def get_result(
    result_id: RecordId, company: CurrentCompany, session: SessionDep
) -> AIResultOut:
    row = await session.scalar(
        select(AIResult).where(AIResult.id == result_id, AIResult.company_id == company.id)
    )
    if row is None:
        raise not_found()
    return AIResultOut.model_validate(row)


@router.get(
    "/briefings/{day}", summary="The briefing of a day", responses=error_responses(401, 404)
)
async def get_briefing(day: date, company: CurrentCompany, session: SessionDep) -> AIResultOut:
    """The newest briefing for ``day`` (``YYYY-MM-DD``, the company's local date)."""
    row = await session.scalar(
        select(AIResult)
        .where(
            AIResult.company_id == company.id,
            AIResult.kind == AIResultKind.BRIEFING,
            AIResult.day == day,
        )
        .order_by(AIResult.created_at.desc())
        .limit(1)
    )
    if row is None:
        raise not_found()
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


def _conversations(user: User) -> Select[tuple[Conversation]]:
    return select(Conversation).where(
        Conversation.user_id == user.id, Conversation.company_id == user.company_id
    )


async def _conversation(session: SessionDep, user: User, conversation_id: str) -> Conversation:
    row = await session.scalar(_conversations(user).where(Conversation.id == conversation_id))
    if row is None:
        raise not_found()
    return row


def _conversation_out(row: Conversation, messages: list[MessageOut]) -> ConversationOut:
    # Built by hand: validating the row would touch its lazy ``messages`` relationship.
    return ConversationOut(
        id=row.id,
        title=row.title,
        created_at=row.created_at,
        updated_at=row.updated_at,
        messages=messages,
    )


def _messages(conversation_id: str) -> Select[tuple[Message]]:
    return (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at, Message.id)
    )


@router.post(
    "/conversations", status_code=201, summary="Start a chat", responses=error_responses(401, 403)
)
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, session: SessionDep, state: StateDep
) -> ConversationOut:
    now = now_utc(state.clock)
    conversation = Conversation(
        company_id=user.company_id,
        user_id=user.id,
        title=body.title,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    return _conversation_out(conversation, [])


@router.get("/conversations", summary="List my chats", responses=error_responses(401))
async def list_conversations(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ConversationOut]:
    """Most recently active first; messages are on each chat's own page."""
    query = _conversations(user)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit).offset(offset)
    )
    items = [_conversation_out(row, []) for row in rows]
    return Page[ConversationOut](items=items, total=int(total or 0), limit=limit, offset=offset)


@router.get(
    "/conversations/{conversation_id}",
    summary="One chat with its messages",
    responses=error_responses(401, 404),
)
async def get_conversation(
    conversation_id: RecordId, user: CurrentUser, session: SessionDep
) -> ConversationOut:
    row = await _conversation(session, user, conversation_id)
    messages = [MessageOut.model_validate(m) for m in await session.scalars(_messages(row.id))]
    return _conversation_out(row, messages)


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    summary="Delete a chat",
    responses=error_responses(401, 403, 404),
)
async def delete_conversation(
    conversation_id: RecordId, user: CurrentUser, session: SessionDep
) -> Response:
    row = await _conversation(session, user, conversation_id)
    await session.execute(delete(Message).where(Message.conversation_id == row.id))
    await session.delete(row)
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
    conversation = await _conversation(session, user, conversation_id)
    now = now_utc(state.clock)
    recent = await session.scalar(
        select(func.count(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.user_id == user.id,
            Message.role == MessageRole.USER,
            Message.created_at > now - timedelta(minutes=1),
        )
    )
    if (recent or 0) >= QUESTIONS_PER_MINUTE:
        raise HTTPException(429, TOO_MANY)
    message = Message(
        conversation_id=conversation.id, role=MessageRole.USER, content=body.content, created_at=now
    )
    session.add(message)
    conversation.updated_at = now
    if conversation.title is None:
        conversation.title = body.content.splitlines()[0][:100]
    await session.flush()
    ref = await state.system.helpers.queue_chat_response(
        user.id, user.company_id, conversation.id, message.id, session=session
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
    conversation = await _conversation(session, user, conversation_id)
    query = _messages(conversation.id)
    if after is not None:
        marker = await session.scalar(
            select(Message).where(Message.id == after, Message.conversation_id == conversation.id)
        )
        if marker is None:
            raise not_found()
        query = query.where(
            (Message.created_at > marker.created_at)
            | ((Message.created_at == marker.created_at) & (Message.id > marker.id))
        )
    # The wait must not hold the request's transaction (SQLite's one write lock).
    await session.commit()
    db = state.notifications.db
    poll_s = state.settings.notifications.stream_poll_s
    deadline = time.monotonic() + wait
    async with state.system.events.subscribe(CHAT_CHANNEL) as signals:
        while True:
            async with db.read() as reader:
                found = [MessageOut.model_validate(m) for m in await reader.scalars(query)]
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            # Woken by any answer (or the poll): one cheap read tells whether it is ours.
            await signals.get(min(poll_s, remaining))
