"""Bodies of the workers view API (``GET /api/queue/workers``).

Built from :class:`ils.jobs.workers_view.WorkersView` after it was scoped to the
viewer, so what a body holds is already what the viewer may see: ``host`` and ``pid``
are ``null`` for company admins, and ``running`` lists only their company's jobs
(``other_running`` counts the rest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from ils.jobs.workers_view import RunningJobInfo, WorkerInfo, WorkersView
from ils.web.schemas.common import OutputModel
from ils.web.schemas.times import utc_from_ms, utc_from_ms_or_none


def job_path(queue: str, job_id: str) -> str:
    """The API path of a job (ids are opaque text: quoted as one path segment)."""
    return f"/api/queue/{quote(queue, safe='')}/jobs/{quote(job_id, safe='')}"


class RunningJobOut(OutputModel):
    """A job the worker was running at its last heartbeat."""

    queue: str
    job_id: str
    name: str
    store: str = Field(description="redis, or local (the app database).")
    started_at: datetime | None
    company_id: str | None
    href: str = Field(description="The job in the API: GET it for the job in full.")

    @classmethod
    def of(cls, job: RunningJobInfo) -> RunningJobOut:
        return cls.read_from(
            job,
            started_at=utc_from_ms_or_none(job.started_at_ms),
            href=job_path(job.queue, job.job_id),
        )


class WorkerOut(OutputModel):
    """One worker process, as of its last heartbeat."""

    id: str
    host: str | None = Field(description="Its machine; null unless you are a platform_admin.")
    pid: int | None = Field(description="Its process id; null unless you are a platform_admin.")
    version: str | None = Field(description="The ILS version it runs (null: an older release).")
    queues: list[str]
    concurrency: dict[str, int] = Field(description="Slots per queue: jobs it may run at once.")
    running: list[RunningJobOut] = Field(description="Its running jobs that you may see.")
    other_running: int = Field(description="Running jobs of other companies (only counted).")
    started_at: datetime
    last_heartbeat: datetime
    seen_s_ago: float
    jobs_done: int = Field(description="Jobs completed since it started.")
    jobs_failed: int = Field(description="Attempts failed since it started (retried or not).")
    gone: Literal["stopped", "silent"] | None = Field(
        description="null while live; stopped: shut down cleanly; silent: heartbeats ended."
    )
    stopped_at: datetime | None

    @classmethod
    def of(cls, worker: WorkerInfo, now_ms: int) -> WorkerOut:
        return cls.read_from(
            worker,
            id=worker.worker_id,
            running=[RunningJobOut.of(job) for job in worker.running],
            started_at=utc_from_ms(worker.started_at_ms),
            last_heartbeat=utc_from_ms(worker.seen_at_ms),
            seen_s_ago=max(now_ms - worker.seen_at_ms, 0) / 1000,
            gone=None if worker.gone is None else worker.gone.value,
            stopped_at=utc_from_ms_or_none(worker.stopped_at_ms),
        )


class WorkersOut(BaseModel):
    """Live workers, first started first, and those gone in the last hour, last gone
    first."""

    now: datetime
    heartbeat_s: float = Field(description="How often workers beat; live = within 3 beats.")
    live: list[WorkerOut]
    recently_gone: list[WorkerOut]

    @classmethod
    def of(cls, view: WorkersView) -> WorkersOut:
        return cls(
            now=utc_from_ms(view.now_ms),
            heartbeat_s=view.heartbeat_s,
            live=[WorkerOut.of(worker, view.now_ms) for worker in view.live],
            recently_gone=[WorkerOut.of(worker, view.now_ms) for worker in view.recently_gone],
        )
