"""Row shapes, input checks and small statement builders of the local job store.

Kept apart from ``stores.local`` so the store class reads as the state machine it is,
and so these pure helpers can be tested without a database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from ils.errors import InvalidPayloadError
from ils.jobs.catalogue import QueueConfig
from ils.jobs.model import JobRecord, JobState, NewJob, new_job_id
from ils.jobs.stores.local.schema import (
    COMPANY_ID_LENGTH,
    JOB_ID_LENGTH,
    JOB_NAME_LENGTH,
    JobLogRow,
    JobRow,
    QueueStateRow,
    WorkerRow,
)

JOBS: Table = JobRow.__table__  # type: ignore[assignment]
LOGS: Table = JobLogRow.__table__  # type: ignore[assignment]
QUEUES: Table = QueueStateRow.__table__  # type: ignore[assignment]
WORKERS: Table = WorkerRow.__table__  # type: ignore[assignment]

#: BullMQ refuses priorities above 2**21; so do we, so both stores accept the same jobs.

# Stored states. ``paused`` is never stored: it is a waiting job of a paused queue.
WAITING = JobState.WAITING.value
ACTIVE = JobState.ACTIVE.value
DELAYED = JobState.DELAYED.value
COMPLETED = JobState.COMPLETED.value
FAILED = JobState.FAILED.value

STALLED_REASON = "job stalled more than allowable limit"


@dataclass(frozen=True, slots=True)
class QueueSwitches:
    """A queue's shared switches: the pause flag and the rate-limit window."""

    paused: bool = False
    window_start_ms: int = 0
    window_count: int = 0


def stored_state(state: JobState, paused: bool) -> str | None:
    """The state column value that shows as ``state``, ``None`` when nothing can.

    A paused queue has no ``waiting`` jobs and a running one no ``paused`` jobs, so
    lists, counts and clean agree with each other.
    """
    if state is JobState.PAUSED:
        return WAITING if paused else None
    if state is JobState.WAITING and paused:
        return None
    return state.value


def shown_state(stored: str, paused: bool) -> JobState:
    """The state a caller sees for a stored state."""
    if stored == WAITING and paused:
        return JobState.PAUSED
    return JobState(stored)


def json_value(value: Any, queue: str, name: str, what: str) -> Any:
    """Refuse what JSON cannot hold, before anything is written.

    NaN and infinities are refused too: PostgreSQL's ``json`` type rejects them, and a
    value the SQLite store would accept must not break the PostgreSQL one.
    """
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(
            queue, name, [f"{what}: not JSON ({type(exc).__name__})"]
        ) from None
    return value


def check_new_job(queue: str, job: NewJob) -> None:
    """Refuse a job no store would run (``NewJob.problems``) or that does not fit this
    store's columns, with a message safe to log (no values)."""
    problems = job.problems()
    opts = job.options
    if isinstance(job.name, str) and len(job.name) > JOB_NAME_LENGTH:
        problems.append(f"name: must be at most {JOB_NAME_LENGTH} characters")
    if isinstance(opts.job_id, str) and len(opts.job_id) > JOB_ID_LENGTH:
        problems.append(f"job_id: must be at most {JOB_ID_LENGTH} characters")
    if isinstance(opts.company_id, str) and len(opts.company_id) > COMPANY_ID_LENGTH:
        problems.append(f"company_id: must be at most {COMPANY_ID_LENGTH} characters")
    name = job.name if isinstance(job.name, str) else "?"
    if problems:
        raise InvalidPayloadError(queue, name, problems)
    json_value(job.data, queue, name, "data")


def new_job_values(config: QueueConfig, job: NewJob, now: int) -> dict[str, Any]:
    """The column values of a job being added, with the queue's defaults filled in."""
    opts = job.options
    return {
        "id": opts.job_id or new_job_id(),
        "queue": config.key,
        "name": job.name,
        "data": job.data,
        "company_id": opts.company_id,
        "state": DELAYED if opts.delay_ms > 0 else WAITING,
        "priority": opts.priority,
        "attempts": config.attempts if opts.attempts is None else opts.attempts,
        "attempts_made": 0,
        "attempts_started": 0,
        "stalled_count": 0,
        "backoff_delay_ms": (
            config.backoff_delay_ms if opts.backoff_delay_ms is None else opts.backoff_delay_ms
        ),
        "delay_ms": opts.delay_ms,
        "run_at_ms": now + opts.delay_ms,
        "lock_token": None,
        "lock_until_ms": None,
        "progress": None,
        "result": None,
        "failed_reason": None,
        "stacktrace": [],
        "created_at_ms": now,
        "processed_at_ms": None,
        "finished_at_ms": None,
    }


def retried_values(now: int) -> dict[str, Any]:
    """The columns BullMQ's retry of a failed job rewrites, in every store that keeps
    these columns (the local store's rows, the memory store's ``MemoryJob``).

    Attempts start again from zero; the finish time, start time and failure reason are
    cleared (the stack traces stay, as history); due now, so the job queues behind the
    jobs already waiting.
    """
    return {
        "state": WAITING,
        "attempts_made": 0,
        "attempts_started": 0,
        "stalled_count": 0,
        "run_at_ms": now,
        "failed_reason": None,
        "finished_at_ms": None,
        "processed_at_ms": None,
        "lock_token": None,
        "lock_until_ms": None,
    }


def _insert_job() -> TextClause:
    """``INSERT ... ON CONFLICT (queue, id) DO NOTHING`` of one job, as text.

    Both databases spell it alike. SQLAlchemy's dialect ``on_conflict_do_nothing``
    cannot be cached and would be compiled again for every add; this is compiled once.
    """
    columns = [column.name for column in JOBS.c if column.name != "seq"]
    sql = (
        f"INSERT INTO {JOBS.name} ({', '.join(columns)}) "  # noqa: S608 (column names)
        f"VALUES ({', '.join(':' + name for name in columns)}) "
        "ON CONFLICT (queue, id) DO NOTHING"
    )
    return text(sql).bindparams(*(bindparam(name, type_=JOBS.c[name].type) for name in columns))


INSERT_JOB = _insert_job()


def _as_read(value: Any) -> Any:
    """A JSON column as the database driver returns it: already decoded."""
    return value


def record_from_row(
    row: Row[Any] | Any,
    paused: bool,
    logs: list[str] | None = None,
    *,
    store: str = "local",
    load: Callable[[Any], Any] = _as_read,
) -> JobRecord:
    """A ``JobRecord`` from a full ``ils_jobs`` row, or from anything holding its
    columns as attributes: the memory store's ``MemoryJob`` (``store="memory"``), whose
    JSON columns are text that ``load`` reads, so both stores build records alike."""
    return JobRecord(
        id=row.id,
        queue=row.queue,
        name=row.name,
        data=load(row.data),
        state=shown_state(row.state, paused),
        priority=row.priority,
        attempts=row.attempts,
        attempts_made=row.attempts_made,
        backoff_delay_ms=row.backoff_delay_ms,
        delay_ms=row.delay_ms,
        progress=load(row.progress),
        result=load(row.result),
        failed_reason=row.failed_reason,
        stacktrace=list(row.stacktrace or []),
        created_at_ms=row.created_at_ms,
        processed_at_ms=row.processed_at_ms,
        finished_at_ms=row.finished_at_ms,
        logs=logs or [],
        store=store,
        company_id=row.company_id,
    )


def insert_ignoring_conflicts(dialect: str, table: Table, *keys: str) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for the dialect in use.

    Both SQLite and PostgreSQL spell it the same, but SQLAlchemy builds it from each
    dialect's own ``insert``.
    """
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def upsert_pause(dialect: str, queue: str, paused: bool) -> Insert:
    """Set a queue's pause flag, creating its state row when it has none yet."""
    values = {"queue": queue, "paused": paused, "rl_window_start_ms": 0, "rl_count": 0}
    if dialect == "postgresql":
        pg = postgresql.insert(QUEUES).values(values)
        return pg.on_conflict_do_update(index_elements=["queue"], set_={"paused": paused})
    lite = sqlite.insert(QUEUES).values(values)
    return lite.on_conflict_do_update(index_elements=["queue"], set_={"paused": paused})
