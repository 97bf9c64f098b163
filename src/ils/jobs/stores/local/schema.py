"""The tables of the local job store (``stores.local``), on the app's one metadata.

Design notes, so the indexes make sense:

* ``ils_jobs.seq`` is an autoincrementing integer primary key: SQLite only
  autoincrements an ``INTEGER PRIMARY KEY`` (the rowid), PostgreSQL gets ``BIGSERIAL``.
  It breaks ties in FIFO order and is what logs point at. The public job id is a
  string, unique per queue like BullMQ's ids (a caller may reuse an id on another
  queue).
* The state column holds ``waiting``, ``active``, ``delayed``, ``completed`` or
  ``failed``. ``paused`` is never stored: it is ``waiting`` seen through the queue's
  ``paused`` flag, so pausing and resuming are one-row updates (BullMQ 5 does the same
  with its meta flag).
* ``run_at_ms`` is when a job is (or became) due: the add time for an immediate job,
  the end of the delay or back-off otherwise. Waiting jobs are served by
  ``(priority, run_at_ms, seq)``, so a promoted or retried job queues behind the jobs
  that were already waiting, as BullMQ's ``LPUSH`` does.
* Times are epoch milliseconds from the injected clock (``BigInteger``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base

#: An autoincrementing 64-bit key on PostgreSQL that is the rowid on SQLite.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

#: Longest job id accepted (BullMQ ids are free strings; ours are 32 hex digits).
JOB_ID_LENGTH = 255
QUEUE_KEY_LENGTH = 64
JOB_NAME_LENGTH = 255
TOKEN_LENGTH = 255
COMPANY_ID_LENGTH = 64


class JobRow(Base):
    """One job of any queue, in any state."""

    __tablename__ = "ils_jobs"
    __table_args__ = (
        UniqueConstraint("queue", "id"),
        # fetch: the most urgent due job; counts by state use its (queue, state) prefix.
        Index("ix_ils_jobs_fetch", "queue", "state", "priority", "run_at_ms", "seq"),
        # promotion of due delayed jobs, the next due time, lock expiry of active jobs.
        Index("ix_ils_jobs_due", "queue", "state", "run_at_ms"),
        # retention and clean of finished jobs, newest first.
        Index("ix_ils_jobs_finished", "queue", "state", "finished_at_ms", "seq"),
        # a company's jobs by state, newest first (the monitoring API's scoped lists).
        Index("ix_ils_jobs_company", "queue", "company_id", "state", "seq"),
    )

    seq: Mapped[int] = mapped_column(SEQ_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH))
    queue: Mapped[str] = mapped_column(String(QUEUE_KEY_LENGTH))
    name: Mapped[str] = mapped_column(String(JOB_NAME_LENGTH))
    data: Mapped[Any] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer)
    attempts_made: Mapped[int] = mapped_column(Integer, default=0)
    attempts_started: Mapped[int] = mapped_column(Integer, default=0)
    stalled_count: Mapped[int] = mapped_column(Integer, default=0)
    backoff_delay_ms: Mapped[int] = mapped_column(BigInteger)
    delay_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    run_at_ms: Mapped[int] = mapped_column(BigInteger)
    lock_token: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH))
    lock_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    progress: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    result: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    failed_reason: Mapped[str | None] = mapped_column(Text)
    stacktrace: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    processed_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    company_id: Mapped[str | None] = mapped_column(String(COMPANY_ID_LENGTH))


class JobLogRow(Base):
    """One log line of a job; deleted with its job (``ON DELETE CASCADE``)."""

    __tablename__ = "ils_job_logs"

    seq: Mapped[int] = mapped_column(SEQ_TYPE, primary_key=True, autoincrement=True)
    job_seq: Mapped[int] = mapped_column(
        SEQ_TYPE, ForeignKey("ils_jobs.seq", ondelete="CASCADE"), index=True
    )
    line: Mapped[str] = mapped_column(Text)


class WorkerRow(Base):
    """A worker process that said it was alive (both modes: every worker has the app
    database). A row not seen for a few heartbeats is a worker that died; one with
    ``stopped_at_ms`` stopped cleanly. Both stay an hour (the workers view's "recently
    gone"), then the store deletes them.

    What the process does is rewritten every beat: ``running`` (a JSON list of
    ``{queue, job_id, name, store, started_at_ms, company_id}``), ``concurrency``
    (queue key to slots) and the counts since it started. The columns added by
    revision 0013 are nullable or defaulted, so a worker of the previous release
    can still write its row during a rolling upgrade.
    """

    __tablename__ = "ils_workers"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[Any] = mapped_column(JSON, nullable=False)
    started_at_ms: Mapped[int] = mapped_column(BigInteger)
    seen_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    version: Mapped[str | None] = mapped_column(String(64))
    concurrency: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    running: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    jobs_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    jobs_failed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    stopped_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class QueueStateRow(Base):
    """Per-queue switches shared by every process: pause and the rate-limit window.

    The rate limiter is BullMQ's fixed window: ``rl_window_start_ms`` is when the first
    job of the current window was taken, ``rl_count`` how many were taken since.
    """

    __tablename__ = "ils_queue_state"

    queue: Mapped[str] = mapped_column(String(QUEUE_KEY_LENGTH), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    rl_window_start_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    rl_count: Mapped[int] = mapped_column(Integer, default=0)
