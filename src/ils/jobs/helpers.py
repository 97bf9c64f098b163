"""Typed helpers for every job of jobs.md: the one way application code queues work.

Each helper takes the identifiers and short texts of its job, validates them with the
job's payload model (a clear error and nothing queued on bad input), picks the
priority and attempts of the job type, and hands the job to a :class:`JobSink` (the
producer). Passing ``session`` enqueues inside the caller's database transaction
(outbox): the job runs only if that transaction commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.errors import ConfigurationError, InvalidPayloadError
from ils.jobs.fairness import Demand
from ils.jobs.job_types import (
    AiInsightType,
    JobTypes,
    MarketplaceAction,
    MetricType,
    NotificationInsightType,
    NotificationPriority,
    TimeRange,
    default_job_types,
    validate_payload,
)
from ils.jobs.model import JobOptions, JobRef
from ils.jobs.payloads.ai import DEFAULT_FORECAST_DAYS
from ils.jobs.sink import JobSink

# jobs.md: e-mail helpers may set 2-5 attempts (fewer retries nothing, more spams
# a recipient whose server half-accepted the mail).
EMAIL_MIN_ATTEMPTS: Final = 2
EMAIL_MAX_ATTEMPTS: Final = 5


def _attempts_problems(attempts: int | None) -> list[str]:
    """Check an e-mail helper's ``attempts``; problems in the payload-error format."""
    if attempts is None:
        return []
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        return ["attempts: must be a whole number"]
    if not EMAIL_MIN_ATTEMPTS <= attempts <= EMAIL_MAX_ATTEMPTS:
        return [f"attempts: must be between {EMAIL_MIN_ATTEMPTS} and {EMAIL_MAX_ATTEMPTS}"]
    return []


class JobHelpers:
    """One async method per job of jobs.md, each returning the :class:`JobRef`.

    Args:
        sink: Receives the validated jobs (the producer in production).
        job_types: The catalogue of job types; the defaults of jobs.md when omitted.
        stats: What ``get_queue_stats`` answers (``JobMonitor.stats`` in production).
        demand: Jobs a user triggered, of that class (see :meth:`on_demand`).
    """

    def __init__(
        self,
        sink: JobSink,
        job_types: JobTypes | None = None,
        *,
        stats: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        demand: Demand | None = None,
    ) -> None:
        self._sink = sink
        self._job_types = job_types if job_types is not None else default_job_types()
        self._stats = stats
        self._demand = demand

    def on_demand(self, demand: Demand) -> JobHelpers:
        """These helpers for jobs a user just asked for (``interactive``: a person
        waits on screen; ``bulk``: a manager's run): on a shared queue with quotas they
        count against the company's quota and get its fair priority, or raise
        ``QuotaExceededError`` (``ils.jobs.fairness``). Platform work (schedules,
        follow-ups) uses the plain helpers and keeps its job type's priority."""
        return JobHelpers(self._sink, self._job_types, stats=self._stats, demand=demand)

    def _build(
        self, queue: str, name: str, fields: dict[str, object], attempts: int | None = None
    ) -> tuple[BaseModel, JobOptions]:
        """The validated payload and its job type's options; every problem (payload
        fields and ``attempts``) reported at once in one ``InvalidPayloadError``."""
        job_type = self._job_types.get(queue, name)
        problems = _attempts_problems(attempts)
        try:
            payload = validate_payload(job_type, fields)
        except InvalidPayloadError as exc:
            problems = problems + exc.problems
        if problems:
            raise InvalidPayloadError(queue, name, problems)
        return payload, job_type.options_for(payload, attempts=attempts)

    async def _enqueue(
        self,
        queue: str,
        name: str,
        fields: dict[str, object],
        *,
        session: AsyncSession | None,
        attempts: int | None = None,
    ) -> JobRef:
        """Validate, then enqueue with the type's options (the sink is not called on any
        problem). With a demand class (:meth:`on_demand`), the job is made for the
        company its payload names, whose quota it counts against."""
        payload, options = self._build(queue, name, fields, attempts)
        if self._demand is None:
            return await self._sink.enqueue(queue, name, payload, options, session=session)
        company_id = getattr(payload, "company_id", None)
        if isinstance(company_id, str):
            options = replace(options, company_id=company_id)
        return await self._sink.enqueue(
            queue, name, payload, options, session=session, demand=self._demand
        )

    async def queue_many(
        self,
        queue: str,
        name: str,
        rows: Sequence[dict[str, object]],
        *,
        session: AsyncSession | None = None,
    ) -> list[JobRef]:
        """Many jobs of one type at once (a fan-out, a batch of invoices), each row the
        fields of one job as its helper takes them; all validated first (a bad row
        queues none and is named), then queued in one round trip or one insert."""
        jobs = []
        for index, fields in enumerate(rows):
            try:
                payload, options = self._build(queue, name, fields)
            except InvalidPayloadError as exc:
                problems = [f"row {index}: {problem}" for problem in exc.problems]
                raise InvalidPayloadError(queue, name, problems) from None
            jobs.append((name, payload, options))
        return await self._sink.enqueue_many(queue, jobs, session=session)

    async def get_queue_stats(self) -> dict[str, Any]:
        """Counts of every queue by state and whether Redis is in use (jobs.md)."""
        if self._stats is None:
            raise ConfigurationError("these helpers were built without a stats source")
        return await self._stats()

    # -- email -----------------------------------------------------------------------

    async def queue_order_confirmation_email(
        self,
        order_id: str,
        user_id: str,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Confirm an order to the user who placed it; the most urgent e-mail."""
        fields: dict[str, object] = {"order_id": order_id, "user_id": user_id}
        return await self._enqueue(
            "email", "order-confirmation", fields, attempts=attempts, session=session
        )

    async def queue_shipment_notification_email(
        self,
        order_id: str,
        user_id: str,
        tracking_number: str,
        carrier: str | None = None,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Tell the user their order shipped, with its tracking number."""
        fields: dict[str, object] = {
            "order_id": order_id,
            "user_id": user_id,
            "tracking_number": tracking_number,
            "carrier": carrier,
        }
        return await self._enqueue(
            "email", "order-shipment", fields, attempts=attempts, session=session
        )

    async def queue_purchase_order_email(
        self,
        po_id: str,
        supplier_id: str,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Send a purchase order to its supplier (5 attempts: suppliers' servers vary)."""
        fields: dict[str, object] = {"po_id": po_id, "supplier_id": supplier_id}
        return await self._enqueue(
            "email", "purchase-order", fields, attempts=attempts, session=session
        )

    async def queue_marketplace_connection_email(
        self,
        connection_id: str,
        requester_company_id: str,
        target_company_id: str,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Ask the target company by e-mail to answer a marketplace connection request."""
        fields: dict[str, object] = {
            "connection_id": connection_id,
            "requester_company_id": requester_company_id,
            "target_company_id": target_company_id,
        }
        return await self._enqueue(
            "email", "marketplace-connection", fields, attempts=attempts, session=session
        )

    async def queue_general_notification_email(
        self,
        user_id: str,
        subject: str,
        content: str,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Mail a composed message to one user (one-line subject, bounded content)."""
        fields: dict[str, object] = {"user_id": user_id, "subject": subject, "content": content}
        return await self._enqueue(
            "email", "general-notification", fields, attempts=attempts, session=session
        )

    async def queue_daily_briefing_email(
        self,
        user_id: str,
        company_id: str,
        date: dt.date | str,
        *,
        attempts: int | None = None,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Mail a user the daily briefing of their company for ``date`` (lowest priority).

        ``date`` is the company's local calendar date, a ``date`` or ``YYYY-MM-DD``.
        """
        fields: dict[str, object] = {"user_id": user_id, "company_id": company_id, "date": date}
        return await self._enqueue(
            "email", "daily-briefing", fields, attempts=attempts, session=session
        )

    # -- pdf -------------------------------------------------------------------------

    async def queue_order_sheet_pdf(
        self, order_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Render an order's order sheet."""
        return await self._enqueue("pdf", "order-sheet", {"order_id": order_id}, session=session)

    async def queue_invoice_pdf(
        self, invoice_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Render an invoice (urgent: customers wait for it)."""
        return await self._enqueue("pdf", "invoice", {"invoice_id": invoice_id}, session=session)

    async def queue_receipt_pdf(
        self, invoice_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Render the receipt of a paid invoice."""
        return await self._enqueue("pdf", "receipt", {"invoice_id": invoice_id}, session=session)

    async def queue_lab_work_ticket_pdf(
        self, order_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Render the work ticket of an order (urgent: the lab cannot start without it)."""
        return await self._enqueue(
            "pdf", "lab-work-ticket", {"order_id": order_id}, session=session
        )

    async def queue_examination_form_pdf(
        self, examination_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Render an examination form; the worker reads the examination itself."""
        return await self._enqueue(
            "pdf", "examination-form", {"examination_id": examination_id}, session=session
        )

    # -- notification ----------------------------------------------------------------

    async def queue_system_notification(
        self,
        user_id: str,
        title: str,
        message: str,
        priority: NotificationPriority = "medium",
        action_url: str | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Notify a user in-app; ``priority`` also orders the job (urgent first).

        ``action_url`` is a path in the app (``/orders/42``) or an http(s) URL.
        """
        fields: dict[str, object] = {
            "user_id": user_id,
            "title": title,
            "message": message,
            "priority": priority,
            "action_url": action_url,
        }
        return await self._enqueue("notification", "system-notification", fields, session=session)

    async def queue_order_notification(
        self,
        user_id: str,
        order_id: str,
        status: str,
        message: str,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Tell a user in-app that an order changed status."""
        fields: dict[str, object] = {
            "user_id": user_id,
            "order_id": order_id,
            "status": status,
            "message": message,
        }
        return await self._enqueue("notification", "order-notification", fields, session=session)

    async def queue_company_order_notification(
        self,
        company_id: str,
        order_id: str,
        status: str,
        message: str,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Tell every active user of a company in-app that an order changed status:
        one job per event, whose worker finds the recipients when it runs."""
        fields: dict[str, object] = {
            "company_id": company_id,
            "order_id": order_id,
            "status": status,
            "message": message,
        }
        return await self._enqueue(
            "notification", "company-order-notification", fields, session=session
        )

    async def queue_ai_insight_notification(
        self,
        user_id: str,
        insight_type: NotificationInsightType,
        title: str,
        summary: str,
        detail_url: str | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Point a user in-app at a new AI insight; ``detail_url`` as ``action_url``."""
        fields: dict[str, object] = {
            "user_id": user_id,
            "insight_type": insight_type,
            "title": title,
            "summary": summary,
            "detail_url": detail_url,
        }
        return await self._enqueue(
            "notification", "ai-insight-notification", fields, session=session
        )

    async def queue_marketplace_notification(
        self,
        user_id: str,
        connection_id: str,
        action: MarketplaceAction,
        company_name: str,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Tell a user in-app about a marketplace connection request or its answer."""
        fields: dict[str, object] = {
            "user_id": user_id,
            "connection_id": connection_id,
            "action": action,
            "company_name": company_name,
        }
        return await self._enqueue(
            "notification", "marketplace-notification", fields, session=session
        )

    # -- ai --------------------------------------------------------------------------

    async def queue_daily_briefing(
        self,
        company_id: str,
        date: dt.date | str,
        user_ids: Sequence[str] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Generate a company's briefing for ``date``, for ``user_ids`` or (``None``) all."""
        fields: dict[str, object] = {"company_id": company_id, "date": date, "user_ids": user_ids}
        return await self._enqueue("ai", "daily-briefing", fields, session=session)

    async def queue_demand_forecast(
        self,
        company_id: str,
        forecast_days: int = DEFAULT_FORECAST_DAYS,
        product_ids: Sequence[str] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Forecast demand 1-365 days ahead, for ``product_ids`` or (``None``) all."""
        fields: dict[str, object] = {
            "company_id": company_id,
            "forecast_days": forecast_days,
            "product_ids": product_ids,
        }
        return await self._enqueue("ai", "demand-forecast", fields, session=session)

    async def queue_anomaly_detection(
        self,
        company_id: str,
        metric_type: MetricType,
        time_range: TimeRange = "daily",
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Look for anomalies in one metric of a company over the chosen time range."""
        fields: dict[str, object] = {
            "company_id": company_id,
            "metric_type": metric_type,
            "time_range": time_range,
        }
        return await self._enqueue("ai", "anomaly-detection", fields, session=session)

    async def queue_insight_generation(
        self,
        company_id: str,
        insight_type: AiInsightType,
        period_start: dt.date | str,
        period_end: dt.date | str,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Generate insights over ``period_start``..``period_end`` (inclusive dates)."""
        fields: dict[str, object] = {
            "company_id": company_id,
            "insight_type": insight_type,
            "period_start": period_start,
            "period_end": period_end,
        }
        return await self._enqueue("ai", "insight-generation", fields, session=session)

    async def queue_chat_response(
        self,
        user_id: str,
        company_id: str,
        conversation_id: str,
        message: str,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Answer a chat message (most urgent AI job: a user is waiting for it)."""
        fields: dict[str, object] = {
            "user_id": user_id,
            "company_id": company_id,
            "conversation_id": conversation_id,
            "message": message,
        }
        return await self._enqueue("ai", "chat-response", fields, session=session)

    # -- oma -------------------------------------------------------------------------

    async def queue_oma_file(
        self, order_id: str, file_id: str, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Process an uploaded OMA/VCA tracing file and attach its shape to the order."""
        fields: dict[str, object] = {"order_id": order_id, "file_id": file_id}
        return await self._enqueue("oma", "process-oma-file", fields, session=session)

    # -- scheduled -------------------------------------------------------------------

    async def queue_schedule_run(
        self, schedule_id: str, manual: bool = False, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Run a schedule's jobs: for its newest due time, or now (``manual``, "run now")."""
        fields: dict[str, object] = {"schedule_id": schedule_id, "manual": manual}
        return await self._enqueue("scheduled", "run-schedule", fields, session=session)

    async def queue_cleanup_expired_data(
        self, older_than_days: int | None = None, *, session: AsyncSession | None = None
    ) -> JobRef:
        """Delete expired data (``older_than_days`` overrides the configured retention)."""
        fields: dict[str, object] = {"older_than_days": older_than_days}
        return await self._enqueue("scheduled", "cleanup-expired-data", fields, session=session)
