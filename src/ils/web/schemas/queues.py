"""Bodies of the job operations API (``/api/queue/{queue}/...``) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ils.jobs.model import JobRecord, JobState
from ils.web.schemas.common import InputModel, OutputModel
from ils.web.schemas.times import utc_from_ms


def _time(ms: int | None) -> datetime | None:
    """A job record's time; 0 is how a record says "not yet", like ``None``."""
    return None if not ms else utc_from_ms(ms)


class JobSummaryOut(OutputModel):
    """A job in a list: enough to find it, not its payload."""

    id: str
    name: str
    state: JobState
    store: str = Field(description="redis, or local (the app database).")
    priority: int
    attempts_made: int
    attempts: int
    created_at: datetime | None
    processed_at: datetime | None
    finished_at: datetime | None
    failed_reason: str | None = Field(
        description="Why it failed; paths and addresses hidden unless you are a platform_admin."
    )

    @classmethod
    def of(cls, job: JobRecord) -> JobSummaryOut:
        return cls.read_from(
            job,
            created_at=_time(job.created_at_ms),
            processed_at=_time(job.processed_at_ms),
            finished_at=_time(job.finished_at_ms),
        )


class JobDetailOut(JobSummaryOut):
    """One job in full."""

    queue: str
    company_id: str | None
    data: dict[str, Any] = Field(description="The payload (identifiers, never patient data).")
    options: dict[str, Any]
    progress: Any
    result: Any
    stacktrace: list[str] = Field(
        description="One per failed attempt, oldest first; empty unless you are a platform_admin."
    )
    logs: list[str]

    @classmethod
    def of(cls, job: JobRecord) -> JobDetailOut:
        return cls.read_from(
            job,
            **JobSummaryOut.of(job).model_dump(),
            options={
                "priority": job.priority,
                "attempts": job.attempts,
                "backoff": {"type": "exponential", "delay_ms": job.backoff_delay_ms},
                "delay_ms": job.delay_ms,
            },
        )


class JobPage(BaseModel):
    """A page of jobs; ``truncated`` when a search stopped before the end."""

    items: list[JobSummaryOut]
    total: int
    limit: int
    offset: int
    truncated: bool = False


class CountOut(BaseModel):
    """How many jobs an operation changed."""

    count: int


class CleanIn(InputModel):
    """Delete finished or stuck jobs of one state older than a grace."""

    state: Literal["completed", "failed", "delayed", "waiting", "paused"]
    older_than_s: int = Field(default=0, ge=0, le=365 * 86_400)
    limit: int = Field(default=0, ge=0, le=100_000, description="0: no limit.")


class BulkIn(InputModel):
    """Retry or remove chosen jobs at once."""

    action: Literal["retry", "remove"]
    job_ids: list[str] = Field(min_length=1, max_length=500)


class BulkOut(BaseModel):
    """What a bulk operation did to each job."""

    done: list[str]
    skipped: dict[str, str] = Field(description="Job id → why it was left alone.")


class AuditOut(OutputModel):
    """One audited operation."""

    id: str
    at: datetime
    user_id: str
    user_email: str
    company_id: str
    action: str
    queue: str
    job_id: str | None
    detail: dict[str, Any]
    ip: str | None
    user_agent: str | None
