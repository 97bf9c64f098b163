"""One attempt of a job as others see it: the context a handler gets, the outcome
listeners hear of, the running job a heartbeat reports, and the failure reason kept.

Kept apart from ``consumer`` (the loop that runs attempts) so what handlers, metrics
and the workers view depend on does not change with how jobs are claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.errors import ILSError
from ils.jobs.model import ClaimedJob, JobState
from ils.jobs.stores.base import JobStore

JobListener = Callable[["JobOutcome"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What happened to one attempt, for listeners (metrics, tests, the demo)."""

    queue: str
    name: str
    job_id: str
    store: str
    state: JobState
    attempt: int
    created_at_ms: int
    started_at_ms: int
    duration_s: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job a worker process is running now, as its heartbeat reports it (the
    workers view): identifiers only, never the payload."""

    queue: str
    job_id: str
    name: str
    store: str
    started_at_ms: int | None
    company_id: str | None


@dataclass
class HandlerContext:
    """The :class:`~ils.jobs.registry.JobContext` given to a handler."""

    store_ref: JobStore
    claimed: ClaimedJob
    queue: str

    @property
    def job_id(self) -> str:
        return self.claimed.id

    @property
    def attempt(self) -> int:
        return self.claimed.record.attempts_made + 1

    @property
    def store(self) -> str:
        return self.store_ref.kind

    async def progress(self, value: int | float | dict[str, Any]) -> None:
        await self.store_ref.update_progress(self.queue, self.claimed, value)

    async def log(self, line: str, *, session: AsyncSession | None = None) -> None:
        # The stores keep a job's log as plain lines (BullMQ's list): the attempt that
        # wrote a line is its prefix, so the job page can label every line by attempt.
        labelled = f"[attempt {self.attempt}] {line}"
        if session is None:
            await self.store_ref.add_log(self.queue, self.claimed, labelled)
        else:
            await self.store_ref.add_log_in(session, self.queue, self.claimed, labelled)


def failure_reason(exc: BaseException) -> str:
    """A reason safe to store and show: our errors carry clean messages; for anything
    else only the exception type and message (never the payload) are kept."""
    if isinstance(exc, ILSError):
        return str(exc)
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def to_json(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return result


def job_fields(claimed: ClaimedJob, queue: str) -> dict[str, Any]:
    """The fields a job's log lines carry (``extra``), so a log handler can filter or
    index them: job id, queue, attempt and company (identifiers only, never data)."""
    record = claimed.record
    return {
        "job_id": claimed.id,
        "queue": queue,
        "job_name": record.name,
        "attempt": record.attempts_made + 1,
        "company_id": record.company_id,
    }
