"""The statements behind worker heartbeats (table ``ils_workers``).

Kept out of ``stores.local.admin`` so that module stays the job operations it is; the
store's ``record_worker``, ``forget_worker``, ``live_workers`` and ``recent_workers``
are thin wrappers running these in one transaction each.

Why rows outlive their worker: the workers view lists workers that went away in the
last hour (stopped cleanly, or silent: killed, crashed, cut off), which is when an
operator asks "what happened to the worker that ran this job?". After
:data:`WORKER_RETENTION_MS` since its last heartbeat a row is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from ils.jobs.stores.local.sql import WORKERS

#: How long a gone worker's row is kept after its last heartbeat.
WORKER_RETENTION_MS: Final = 3_600_000
VERSION_LENGTH: Final = 64
HOST_LENGTH: Final = 255


@dataclass(frozen=True, slots=True)
class WorkerDetails:
    """What a worker process does, rewritten at every heartbeat.

    ``running`` holds ``{queue, job_id, name, store, started_at_ms, company_id}`` per
    job (identifiers, never payloads; never more than the process's slots, so the
    row stays small); ``jobs_done`` and ``jobs_failed`` count since
    the process started (a failed attempt counts whether or not it is retried).
    """

    version: str
    concurrency: dict[str, int] = field(default_factory=dict)
    running: list[dict[str, Any]] = field(default_factory=list)
    jobs_done: int = 0
    jobs_failed: int = 0


def upsert_worker(
    dialect: str,
    worker_id: str,
    host: str,
    pid: int,
    queues: list[str],
    started_at_ms: int,
    now_ms: int,
    details: WorkerDetails | None,
) -> Insert:
    """Insert or refresh a worker's row; without ``details`` (a caller of the previous
    shape) only the liveness columns change."""
    values: dict[str, Any] = {
        "worker_id": worker_id,
        "host": host[:HOST_LENGTH],
        "pid": pid,
        "queues": queues,
        "started_at_ms": started_at_ms,
        "seen_at_ms": now_ms,
    }
    changing: dict[str, Any] = {"seen_at_ms": now_ms, "queues": queues}
    if details is not None:
        more = {
            "version": details.version[:VERSION_LENGTH],
            "concurrency": dict(details.concurrency),
            "running": list(details.running),
            "jobs_done": details.jobs_done,
            "jobs_failed": details.jobs_failed,
        }
        values.update(more)
        changing.update(more)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(WORKERS)
        .values(values)
        .on_conflict_do_update(index_elements=["worker_id"], set_=changing)
    )


def mark_stopped(conn: Connection, worker_id: str, now_ms: int) -> None:
    """A worker that stops cleanly leaves the live list at once but stays listed as
    gone; the first stop time is kept if it is marked twice."""
    conn.execute(
        update(WORKERS)
        .where(WORKERS.c.worker_id == worker_id)
        .values(stopped_at_ms=func.coalesce(WORKERS.c.stopped_at_ms, now_ms))
    )


def read_workers(
    conn: Connection, seen_since_ms: int, delete_before_ms: int, *, live_only: bool
) -> list[dict[str, Any]]:
    """Rows seen at or after ``seen_since_ms`` (only those not stopped when
    ``live_only``), first started first; rows last seen before ``delete_before_ms``
    are deleted on the way (reads are rare, so no cleaner of its own is needed)."""
    conn.execute(delete(WORKERS).where(WORKERS.c.seen_at_ms < delete_before_ms))
    query = select(WORKERS).where(WORKERS.c.seen_at_ms >= seen_since_ms)
    if live_only:
        query = query.where(WORKERS.c.stopped_at_ms.is_(None))
    rows = conn.execute(query.order_by(WORKERS.c.started_at_ms, WORKERS.c.worker_id))
    return [dict(row._mapping) for row in rows]
