"""The ``ai`` queue's five handlers.

Each reads in one short transaction, computes (in the CPU pool where it is heavy),
then writes its results and queues its notifications and e-mails in one write
transaction, replacing whatever an earlier attempt of the same job stored. A job
that names a company, user, product or conversation that does not exist fails at
once (:class:`~ils.workers.ai.results.AIDataError`); anything else is retried once
(the queue's two attempts).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import utc_now
from ils.domain.companies import Company
from ils.domain.content import AIResult, AIResultKind, Conversation, Message, MessageRole
from ils.jobs import channels
from ils.jobs.job_types import (
    AnomalyDetection,
    ChatResponse,
    DailyBriefingJob,
    DemandForecast,
    InsightGeneration,
)
from ils.jobs.registry import JobContext
from ils.jobs.worker_context import WorkerContext
from ils.workers.ai import anomaly_scan, demand
from ils.workers.ai.bad_input import job_day, permanent_on_overflow
from ils.workers.ai.briefing import build_briefing
from ils.workers.ai.chat import compose_answer, phrase_answer
from ils.workers.ai.facts import Period, short_date
from ils.workers.ai.insights import generate_insights
from ils.workers.ai.language_model import LanguageModel
from ils.workers.ai.results import (
    AIDataError,
    load_company,
    notify,
    plural,
    recipients,
    replace_results,
)
from ils.workers.ai.series import METRIC_LABELS, daily_metric

#: The event-bus channel of new chat answers; each message is a conversation id.
CHAT_CHANNEL: Final = channels.CHAT


class Offload(Protocol):
    """Runs a picklable call somewhere (the CPU pool; inline in tests)."""

    async def run(self, func: Any, *args: Any) -> Any:
        """``func(*args)``'s result."""
        ...


class InlineOffload:
    """Runs the call on the event loop: for tests and small single-product runs."""

    async def run(self, func: Any, *args: Any) -> Any:
        return func(*args)


class AIWorker:
    """Handlers of the ``ai`` queue for one process."""

    def __init__(
        self, context: WorkerContext, offload: Offload, language_model: LanguageModel | None
    ) -> None:
        self.context = context
        self.settings = context.settings.ai
        self.db = context.db
        self.offload = offload
        self.language_model = language_model

    def _today(self, company: Company) -> date:
        return company.local_date(utc_now(self.context.clock))

    # -- demand forecast ----------------------------------------------------------------

    @permanent_on_overflow
    async def demand_forecast(self, job: DemandForecast, ctx: JobContext) -> dict[str, Any]:
        """Forecast the company's stocked products and store the result."""
        began = time.perf_counter()
        async with self.db.read() as session:
            company = await load_company(session, job.company_id)
            today = self._today(company)
            history = demand.history_period(today, self.settings.forecast_history_days)
            products = await demand.load_histories(session, company, history, job.product_ids)
        read_s, began = time.perf_counter() - began, time.perf_counter()
        await ctx.progress({"done": 0, "total": len(products)})
        results = await self._fit(products, job.forecast_days, ctx)
        fit_s, began = time.perf_counter() - began, time.perf_counter()
        payload_out = demand.forecast_payload(today, job.forecast_days, history, results)
        async with self.db.write() as session:
            company = await load_company(session, job.company_id)
            period = f"{today.isoformat()}+{job.forecast_days}d"
            (row,) = await replace_results(
                session, company, AIResultKind.FORECAST, ctx.job_id, [(today, period, payload_out)]
            )
            reorder = payload_out["reorderNow"]
            notified = 0
            if reorder:
                notified = await notify(
                    session,
                    self.context.helpers,
                    await recipients(session, company),
                    "forecast",
                    f"{plural(len(reorder), 'product')} to reorder now",
                    demand.reorder_summary(results),
                    "/ai/forecasts",
                )
        store_s = time.perf_counter() - began
        await ctx.log(
            f"forecast {len(results)} products ({len(reorder)} to reorder): read {read_s:.2f} s, "
            f"fitted {fit_s:.2f} s, stored {store_s:.2f} s"
        )
        return {
            "resultId": row.id,
            "products": len(results),
            "reorderNow": len(reorder),
            "notified": notified,
        }

    async def _fit(
        self, products: list[demand.ProductHistory], horizon: int, ctx: JobContext
    ) -> list[dict[str, Any]]:
        """Fit in batches, as many at once as the pool has processes, in product order."""
        size = self.settings.forecast_batch
        batches = [products[first : first + size] for first in range(0, len(products), size)]
        slots = asyncio.Semaphore(self.settings.pool_size)
        done = 0

        async def fit(batch: list[demand.ProductHistory]) -> list[dict[str, Any]]:
            nonlocal done
            async with slots:
                fitted: list[dict[str, Any]] = await self.offload.run(
                    demand.forecast_batch, batch, horizon
                )
            done += len(batch)
            await ctx.progress({"done": done, "total": len(products)})
            return fitted

        fitted = await asyncio.gather(*(fit(batch) for batch in batches))
        return [product for batch in fitted for product in batch]

    # -- anomalies ----------------------------------------------------------------------

    @permanent_on_overflow
    async def anomaly_detection(self, job: AnomalyDetection, ctx: JobContext) -> dict[str, Any]:
        """Scan one metric; store new anomalies and tell the managers of big ones."""
        async with self.db.read() as session:
            company = await load_company(session, job.company_id)
            window = anomaly_scan.scan_window(self._today(company), job.time_range)
            daily = await daily_metric(session, company, job.metric_type, window)
        found = anomaly_scan.find_recent(
            daily, window, job.metric_type, job.time_range, self.settings.anomaly_threshold
        )
        label = f"{job.metric_type}:{job.time_range}"
        async with self.db.write() as session:
            company = await load_company(session, job.company_id)
            known = set(
                await session.scalars(
                    select(AIResult.day).where(
                        AIResult.company_id == company.id,
                        AIResult.kind == AIResultKind.ANOMALY,
                        AIResult.period == label,
                        AIResult.job_id != ctx.job_id,
                        AIResult.day.in_([f.day for f in found]),
                    )
                )
            )
            new = [f for f in found if f.day not in known]
            await replace_results(
                session,
                company,
                AIResultKind.ANOMALY,
                ctx.job_id,
                [(f.day, label, f.payload(job.metric_type, job.time_range)) for f in new],
            )
            significant = [
                f for f in new if abs(f.anomaly.score) >= self.settings.anomaly_notify_score
            ]
            notified = 0
            if significant:
                metric = METRIC_LABELS[job.metric_type]
                notified = await notify(
                    session,
                    self.context.helpers,
                    await recipients(session, company),
                    "anomaly",
                    f"Unusual figures: {metric.lower()}"
                    + (f" ({len(significant)})" if len(significant) > 1 else ""),
                    " ".join(f.explanation for f in significant),
                    "/ai/anomalies",
                )
        await ctx.log(
            f"{job.metric_type} {job.time_range}: {len(daily)} days read, "
            f"{len(found)} anomalies in the reported periods, {len(new)} new"
        )
        return {
            "metric": job.metric_type,
            "timeRange": job.time_range,
            "window": [window.start.isoformat(), window.end.isoformat()],
            "found": len(found),
            "new": len(new),
            "notified": notified,
        }

    # -- insights -----------------------------------------------------------------------

    @permanent_on_overflow
    async def insight_generation(self, job: InsightGeneration, ctx: JobContext) -> dict[str, Any]:
        """Compute the findings of one kind over the period and store them."""
        period = Period(
            job_day(job.period_start, "periodStart"), job_day(job.period_end, "periodEnd")
        )
        async with self.db.read() as session:
            company = await load_company(session, job.company_id)
            findings = await generate_insights(
                session, company, job.insight_type, period, self._today(company)
            )
        stored = {
            "insightType": job.insight_type,
            "periodStart": job.period_start,
            "periodEnd": job.period_end,
            "findings": [finding.as_json() for finding in findings],
        }
        async with self.db.write() as session:
            company = await load_company(session, job.company_id)
            (row,) = await replace_results(
                session,
                company,
                AIResultKind.INSIGHT,
                ctx.job_id,
                # ``period`` is 32 characters: the kind is in the payload.
                [(period.end, f"{job.period_start}..{job.period_end}", stored)],
            )
        await ctx.log(f"{job.insight_type}: {len(findings)} findings")
        return {"resultId": row.id, "findings": len(findings)}

    # -- daily briefing -----------------------------------------------------------------

    @permanent_on_overflow
    async def daily_briefing(self, job: DailyBriefingJob, ctx: JobContext) -> dict[str, Any]:
        """Build, store and send the company's briefing for the day (once per job)."""
        day = job_day(job.date, "date")
        async with self.db.read() as session:
            company = await load_company(session, job.company_id)
            done = await self._briefing_of_job(session, company, ctx.job_id)
            if done is not None:
                # An earlier attempt committed: its e-mails and notifications are queued.
                return {"resultId": done, "recipients": None, "again": True}
            users = await recipients(session, company, job.user_ids)
            briefing = await build_briefing(session, company, day)
        # Progress is written by the job store: never while holding the write lock.
        await ctx.progress(60)
        async with self.db.write() as session:
            company = await load_company(session, job.company_id)
            stored = [(day, None, briefing.payload())]
            (row,) = await replace_results(
                session, company, AIResultKind.BRIEFING, ctx.job_id, stored
            )
            for user in users:
                await self.context.helpers.queue_daily_briefing_email(
                    user.id, company.id, day, session=session
                )
            await notify(
                session,
                self.context.helpers,
                users,
                "briefing",
                f"Daily briefing for {short_date(day)}",
                briefing.payload()["summary"],
                f"/ai/briefings/{day.isoformat()}",
            )
        await ctx.log(f"briefing for {day}: {len(users)} recipients")
        return {"resultId": row.id, "recipients": len(users)}

    async def _briefing_of_job(
        self, session: AsyncSession, company: Company, job_id: str
    ) -> str | None:
        found: str | None = await session.scalar(
            select(AIResult.id).where(AIResult.job_id == job_id, AIResult.company_id == company.id)
        )
        return found

    # -- chat ---------------------------------------------------------------------------

    @permanent_on_overflow
    async def chat_response(self, job: ChatResponse, ctx: JobContext) -> dict[str, Any]:
        """Answer the user's message from the company's data and store the reply."""
        async with self.db.read() as session:
            company = await load_company(session, job.company_id)
            conversation = await self._conversation(session, job)
            existing = await session.scalar(select(Message).where(Message.job_id == ctx.job_id))
            if existing is not None:
                return {"messageId": existing.id, "again": True}
            question = await self._question(session, conversation.id, job.message)
            answer = await compose_answer(session, company, question, today=self._today(company))
        # The model (seconds, maybe) is asked with no transaction open.
        if self.language_model is not None:
            answer = await phrase_answer(answer, question, self.language_model)
        now = utc_now(self.context.clock)
        async with self.db.write() as session:
            reply = Message(
                conversation_id=job.conversation_id,
                role=MessageRole.ASSISTANT,
                content=answer.text,
                job_id=ctx.job_id,
                created_at=now,
            )
            session.add(reply)
            stored = await session.get(Conversation, job.conversation_id)
            if stored is not None:
                stored.updated_at = now
            await session.flush()
            reply_id = reply.id
        await self.context.events.publish(CHAT_CHANNEL, job.conversation_id)
        await ctx.log(
            f"answered ({answer.intent}, {'answered' if answer.answered else 'declined'})"
        )
        return {"messageId": reply_id, "intent": answer.intent, "answered": answer.answered}

    async def _conversation(self, session: AsyncSession, job: ChatResponse) -> Conversation:
        conversation = await session.scalar(
            select(Conversation).where(
                Conversation.id == job.conversation_id,
                Conversation.company_id == job.company_id,
                Conversation.user_id == job.user_id,
            )
        )
        if conversation is None:
            raise AIDataError(
                f"conversation {job.conversation_id} is not one of user {job.user_id}"
            )
        return conversation

    async def _question(self, session: AsyncSession, conversation_id: str, message: str) -> str:
        """The question: the stored user message the payload names by id (what our API
        queues, so no text sits in Redis), else the text itself (older producers)."""
        stored = await session.scalar(
            select(Message.content).where(
                Message.id == message,
                Message.conversation_id == conversation_id,
                Message.role == MessageRole.USER,
            )
        )
        return str(stored) if stored is not None else message
