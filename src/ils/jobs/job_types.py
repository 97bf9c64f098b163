"""The job-type catalogue: which jobs exist, their payload models, priority and attempts.

A job type is keyed by (queue key, job name) because job names are only unique within
a queue (``daily-briefing`` is both an e-mail and an AI job). The same payload model
validates a job twice: in the helper before it is enqueued, and in the worker when
the job comes back from the store, whoever enqueued it (the TypeScript service
included). The catalogue is an object built by :func:`default_job_types`, never a
module global, so tests and the scheduler can build registries of their own.

The payload models live in ``ils.jobs.payloads.<queue>`` modules and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ils.errors import ConfigurationError, InvalidPayloadError, UnknownJobTypeError
from ils.jobs.model import JobOptions
from ils.jobs.payloads.ai import (
    AiInsightType,
    AnomalyDetection,
    ChatResponse,
    DailyBriefingJob,
    DemandForecast,
    InsightGeneration,
    MetricType,
    TimeRange,
)
from ils.jobs.payloads.base import NOTIFICATION_PRIORITIES, JobPayload, NotificationPriority
from ils.jobs.payloads.email import (
    DailyBriefingEmail,
    GeneralNotificationEmail,
    MarketplaceConnectionEmail,
    OrderConfirmationEmail,
    OrderShipmentEmail,
    PurchaseOrderEmail,
)
from ils.jobs.payloads.notification import (
    AiInsightNotification,
    CompanyOrderNotification,
    MarketplaceAction,
    MarketplaceNotification,
    NotificationInsightType,
    OrderNotification,
    SystemNotification,
    UrgentNotificationEmail,
)
from ils.jobs.payloads.pdf import (
    ExaminationFormPdf,
    InvoicePdf,
    LabWorkTicketPdf,
    OrderSheetPdf,
    ProcessOmaFile,
    ReceiptPdf,
)
from ils.jobs.payloads.scheduled import CleanupExpiredData, RunSchedule

__all__ = [
    "NOTIFICATION_PRIORITIES",
    "AiInsightNotification",
    "AiInsightType",
    "AnomalyDetection",
    "ChatResponse",
    "CleanupExpiredData",
    "CompanyOrderNotification",
    "DailyBriefingEmail",
    "DailyBriefingJob",
    "DemandForecast",
    "ExaminationFormPdf",
    "GeneralNotificationEmail",
    "InsightGeneration",
    "InvoicePdf",
    "JobPayload",
    "JobType",
    "JobTypes",
    "LabWorkTicketPdf",
    "MarketplaceAction",
    "MarketplaceConnectionEmail",
    "MarketplaceNotification",
    "MetricType",
    "NotificationInsightType",
    "NotificationPriority",
    "OrderConfirmationEmail",
    "OrderNotification",
    "OrderSheetPdf",
    "OrderShipmentEmail",
    "ProcessOmaFile",
    "PurchaseOrderEmail",
    "ReceiptPdf",
    "RunSchedule",
    "SystemNotification",
    "TimeRange",
    "default_job_types",
    "validate_payload",
]


@dataclass(frozen=True, slots=True)
class JobType:
    """One kind of job: where it goes, what its payload is, and how it is scheduled.

    Attributes:
        queue: The catalogue key of the queue (``"email"``), not the Redis name.
        name: The job name, as the TypeScript service spells it.
        model: The pydantic model of the payload; its ``type`` field equals ``name``.
        priority: BullMQ priority (1 is the most urgent), unless the payload asks for
            its own (see :meth:`priority_for`).
        attempts: Attempts for this type, or ``None`` to use the queue's default from
            the catalogue (which settings may override).
    """

    queue: str
    name: str
    model: type[BaseModel]
    priority: int
    attempts: int | None = None

    def __post_init__(self) -> None:
        """Refuse a model whose ``type`` field disagrees with the job name.

        Both travel with every job; a mismatch would make the worker reject every
        job of this type, so it is caught when the catalogue is built.
        """
        type_field = self.model.model_fields.get("type")
        if type_field is None or type_field.default != self.name:
            raise ConfigurationError(
                f"payload model {self.model.__name__} must have type={self.name!r}"
            )
        if self.priority < 1:
            raise ConfigurationError(f"job type {self.queue}/{self.name}: priority must be >= 1")
        if self.attempts is not None and self.attempts < 1:
            raise ConfigurationError(f"job type {self.queue}/{self.name}: attempts must be >= 1")

    def priority_for(self, payload: BaseModel) -> int:
        """The priority to enqueue ``payload`` with: its own if it has one, else ours."""
        if isinstance(payload, JobPayload):
            own = payload.job_priority()
            if own is not None:
                return own
        return self.priority

    def options_for(
        self,
        payload: BaseModel,
        *,
        attempts: int | None = None,
        job_id: str | None = None,
        company_id: str | None = None,
    ) -> JobOptions:
        """The options to enqueue ``payload`` with: its priority, the type's attempts
        (unless ``attempts`` overrides them), and the given id and company."""
        return JobOptions(
            priority=self.priority_for(payload),
            attempts=attempts if attempts is not None else self.attempts,
            job_id=job_id,
            company_id=company_id,
        )


class JobTypes:
    """The registry of job types, looked up by (queue key, job name).

    Immutable once built; :meth:`with_types` returns a larger copy, so a component
    that adds job types (the scheduler's clean-up jobs, a test) never changes what
    another component sees.
    """

    def __init__(self, job_types: Iterable[JobType]) -> None:
        self._by_key: dict[tuple[str, str], JobType] = {}
        for job_type in job_types:
            key = (job_type.queue, job_type.name)
            if key in self._by_key:
                raise ConfigurationError(f"job type {job_type.queue}/{job_type.name} twice")
            self._by_key[key] = job_type

    def get(self, queue: str, name: str) -> JobType:
        """The job type of ``name`` on ``queue``.

        Raises:
            UnknownJobTypeError: no such job on that queue; a worker fails such a job
                permanently, a helper never enqueues it.
        """
        try:
            return self._by_key[(queue, name)]
        except KeyError:
            raise UnknownJobTypeError(queue, name) from None

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[JobType]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def for_queue(self, queue: str) -> tuple[JobType, ...]:
        """The job types of one queue, in catalogue order (empty for a queue without)."""
        return tuple(jt for jt in self._by_key.values() if jt.queue == queue)

    def with_types(self, job_types: Iterable[JobType]) -> JobTypes:
        """A new registry with ours plus ``job_types`` (a duplicate key raises)."""
        return JobTypes([*self._by_key.values(), *job_types])


def default_job_types() -> JobTypes:
    """The job types of jobs.md with their priorities and attempts.

    Attempts are given where jobs.md lists them per type (e-mail and notification);
    the other queues use their queue default, which is configuration.
    """
    return JobTypes(
        [
            # email: the queue default is 3, e-mail helpers may ask for 2-5.
            JobType("email", "order-confirmation", OrderConfirmationEmail, 1, 3),
            JobType("email", "order-shipment", OrderShipmentEmail, 2, 3),
            JobType("email", "purchase-order", PurchaseOrderEmail, 2, 5),
            JobType("email", "marketplace-connection", MarketplaceConnectionEmail, 3, 5),
            JobType("email", "general-notification", GeneralNotificationEmail, 3, 3),
            JobType("email", "daily-briefing", DailyBriefingEmail, 5, 2),
            # pdf
            JobType("pdf", "order-sheet", OrderSheetPdf, 2),
            JobType("pdf", "invoice", InvoicePdf, 1),
            JobType("pdf", "receipt", ReceiptPdf, 3),
            JobType("pdf", "lab-work-ticket", LabWorkTicketPdf, 1),
            JobType("pdf", "examination-form", ExaminationFormPdf, 2),
            # notification: system notifications take their priority from the payload;
            # 3 is that of the default "medium".
            JobType("notification", "system-notification", SystemNotification, 3, 5),
            JobType("notification", "order-notification", OrderNotification, 2, 5),
            JobType("notification", "company-order-notification", CompanyOrderNotification, 2, 5),
            JobType("notification", "ai-insight-notification", AiInsightNotification, 3, 3),
            JobType("notification", "marketplace-notification", MarketplaceNotification, 2, 3),
            JobType("notification", "urgent-notification-email", UrgentNotificationEmail, 1, 3),
            # ai
            JobType("ai", "daily-briefing", DailyBriefingJob, 3),
            JobType("ai", "demand-forecast", DemandForecast, 3),
            JobType("ai", "anomaly-detection", AnomalyDetection, 2),
            JobType("ai", "insight-generation", InsightGeneration, 3),
            JobType("ai", "chat-response", ChatResponse, 1),
            # oma
            JobType("oma", "process-oma-file", ProcessOmaFile, 2),
            # scheduled
            JobType("scheduled", "run-schedule", RunSchedule, 1),
            JobType("scheduled", "cleanup-expired-data", CleanupExpiredData, 3),
        ]
    )


def validate_payload(job_type: JobType, data: Mapping[str, Any]) -> BaseModel:
    """Validate ``data`` (camelCase JSON or snake_case names) against the job's model.

    The error lists ``field: reason`` with field names as in the JSON, and never the
    rejected values: payload texts may mention patients, and the error is logged and
    shown in the monitoring API. For the same reason the pydantic error (whose text
    quotes the input) is neither the cause nor the context of the raised error.

    Raises:
        InvalidPayloadError: the payload does not fit the model.
    """
    try:
        return job_type.model.model_validate(data)
    except ValidationError as exc:
        problems = payload_problems(job_type.model, exc)
    raise InvalidPayloadError(job_type.queue, job_type.name, problems)


def payload_problems(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """``field: reason`` strings from a validation error, without any input value.

    Only the location and pydantic's message are used; ``include_input=False`` keeps
    the values out even of the intermediate dicts. A top-level field reported under
    its Python name (a helper validated by name) is renamed to its JSON alias, so one
    field has one name in every error.
    """
    aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ""
        for position, part in enumerate(err["loc"]):
            if isinstance(part, int):
                where += f"[{part}]"
            elif position == 0:
                where = aliases.get(part, part)
            else:
                where += f".{part}"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where or 'payload'}: {message}")
    return problems
