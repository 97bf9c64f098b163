"""The AI API (``/api/ai``): stored results, running AI jobs, and chat.

* Results (briefings, forecasts, anomalies, insights) are the company's: any role of
  the company may read them; another company's id answers 404.
* Running a job (``POST /api/ai/runs/{kind}``) is for managers: it queues work on the
  rate-limited ``ai`` queue for the whole company, as ``bulk`` demand: held to the
  company's quota (429 with ``Retry-After`` past it) and queued at its fair priority
  (``ils.jobs.fairness``), so one company's runs cannot hold up another's.
* Chat: a user's conversations are theirs alone. A question is stored first and the
  ``chat-response`` job names it by id, so the question's text never sits in Redis;
  the answer arrives as the conversation's next message, which
  ``GET .../messages?after=<id>&wait=<s>`` waits for (woken by the worker's signal on
  the event bus, with a database poll for workers it cannot hear).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Response
from fastapi.types import DecoratedCallable

from ils.clock import Clock
from ils.domain import ai_queries, chat_queries
from ils.domain.companies import Company
from ils.domain.content import AIResultKind, Conversation
from ils.jobs.channels import CHAT as CHAT_CHANNEL
from ils.jobs.helpers import JobHelpers
from ils.jobs.model import JobRef
from ils.web.deps import (
    CurrentCompany,
    CurrentUser,
    ManagerUser,
    PagingDep,
    SessionDep,
    StateDep,
)
from ils.web.limits import ExpensiveRequest
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
from ils.web.schemas.common import Page, RecordId, error_responses
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
    paging: PagingDep,
    kind: AIResultKind | None = None,
) -> Page[AIResultOut]:
    """The company's results, newest first (by the day they are for, then creation)."""
    rows, total = await ai_queries.list_results(
        session, company.id, kind, paging.limit, paging.offset
    )
    return paging.page(rows, total, AIResultOut.model_validate)


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


RUN_RESPONSES: Final = error_responses(401, 403, 429)


@dataclass(frozen=True, slots=True)
class CompanyRun:
    """A manager's run of AI work for their company: what every run route needs,
    the routes differing only in the job they queue. The job is queued in the
    request's transaction (``session``), so it exists only if the request commits."""

    company: Company
    #: The request's ``AsyncSession``, by its alias: routers import no SQLAlchemy.
    session: SessionDep
    helpers: JobHelpers
    clock: Clock


async def company_run(
    user: ManagerUser, company: CurrentCompany, session: SessionDep, state: StateDep
) -> CompanyRun:
    """Managers only: a run works for the whole company. Its job is ``bulk`` demand,
    held to the company's quota and fair priority (``ils.jobs.fairness``)."""
    return CompanyRun(company, session, state.system.helpers.on_demand("bulk"), state.clock)


ManagerRun = Annotated[CompanyRun, Depends(company_run)]


def _run_route(path: str, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a run route: 202 with the queued job."""
    return router.post(path, status_code=202, summary=summary, responses=RUN_RESPONSES)


@_run_route("/runs/daily-briefing", "Build a daily briefing")
async def run_briefing(body: BriefingRun, run: ManagerRun) -> QueuedOut:
    """Queue the briefing of ``date`` (default: today in the company's zone)."""
    day = body.date or run.company.local_date(now_utc(run.clock))
    ref = await run.helpers.queue_daily_briefing(
        run.company.id, day, body.user_ids, session=run.session
    )
    return _queued(ref)


@_run_route("/runs/demand-forecast", "Forecast demand")
async def run_forecast(body: ForecastRun, run: ManagerRun) -> QueuedOut:
    ref = await run.helpers.queue_demand_forecast(
        run.company.id, body.forecast_days, body.product_ids, session=run.session
    )
    return _queued(ref)


@_run_route("/runs/anomaly-detection", "Look for anomalies")
async def run_anomalies(body: AnomalyRun, run: ManagerRun) -> QueuedOut:
    ref = await run.helpers.queue_anomaly_detection(
        run.company.id, body.metric_type, body.time_range, session=run.session
    )
    return _queued(ref)


@_run_route("/runs/insight-generation", "Generate insights")
async def run_insights(body: InsightRun, run: ManagerRun) -> QueuedOut:
    ref = await run.helpers.queue_insight_generation(
        run.company.id, body.insight_type, body.period_start, body.period_end, session=run.session
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
    user: CurrentUser, session: SessionDep, paging: PagingDep
) -> Page[ConversationOut]:
    """Most recently active first; messages are on each chat's own page."""
    rows, total = await chat_queries.list_conversations(
        session, user.id, user.company_id, paging.limit, paging.offset
    )
    return paging.page(rows, total, lambda row: _conversation_out(row, []))


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
    """Stores the question and queues its answer (``chat-response``, interactive demand:
    ahead of every run). 429 when the user asked more than five questions in the last
    minute, or their company reached its quota of answers (with ``Retry-After``)."""
    message, ref = await chat.ask(
        session, state.system.helpers, user, conversation_id, body.content, now_utc(state.clock)
    )
    return AskedOut(message=MessageOut.model_validate(message), job=_queued(ref))


@router.get(
    "/conversations/{conversation_id}/messages",
    summary="Messages after one (waiting for the answer)",
    responses=error_responses(401, 404, 429),
)
async def messages_after(
    conversation_id: RecordId,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    _: ExpensiveRequest,
    after: Annotated[str | None, Query(max_length=32, description="A message id.")] = None,
    wait: Annotated[float, Query(ge=0, le=WAIT_MAX_S, description="Seconds to wait.")] = 0,
) -> list[MessageOut]:
    """The messages after ``after`` (all without it); with ``wait``, an empty answer
    comes only after waiting that long for a new message. A session may have
    ``ILS_LIMITS__EXPENSIVE_PER_SESSION`` of these at once; one more answers 429 with
    ``Retry-After``."""
    conversation = await chat_queries.get_conversation(
        session, user.id, user.company_id, conversation_id
    )
    cursor = None
    if after is not None:
        cursor = await chat_queries.message_cursor(session, conversation.id, after)
    # The wait must not hold the request's connection: this GET only read, so its
    # session is closed here (nothing to commit) and the wait reads in short sessions.
    await session.close()
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
