"""The plumbing and the monitoring/operations half of the local job store.

``LocalJobStore`` (``stores.local``) inherits this and adds the producer and worker
operations; the split keeps each module small. The attributes below are set by
``LocalJobStore.__init__``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Text, cast, delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ils.db.transactions import TxRunner
from ils.errors import InvalidJobStateError, JobNotFoundError, StoreUnavailableError
from ils.jobs.model import (
    COUNTED_STATES,
    FINISHED_STATES,
    JobRecord,
    JobState,
    StoreHealth,
)
from ils.jobs.stores.base import JobFilter, JobTiming, PolledStore, clean_bounds
from ils.jobs.stores.local.claim import read_switches
from ils.jobs.stores.local.sql import (
    COMPLETED,
    DELAYED,
    FAILED,
    JOBS,
    LOGS,
    WAITING,
    record_from_row,
    retried_values,
    shown_state,
    stored_state,
    upsert_pause,
)
from ils.jobs.stores.local.timings import read_timings
from ils.jobs.stores.local.worker_rows import (
    WORKER_RETENTION_MS,
    WorkerDetails,
    mark_stopped,
    read_workers,
    upsert_worker,
)

T = TypeVar("T")

#: Database errors that mean "cannot reach the store now", not "bug".
UNAVAILABLE = (OperationalError, InterfaceError, OSError)


def unreachable(exc: Exception) -> bool:
    """Whether ``exc`` means the store cannot be reached now: one of ``UNAVAILABLE``,
    or a pooled connection the server closed (a restart, a killed backend), which
    asyncpg reports as ``ConnectionDoesNotExistError``: a ``DBAPIError`` marked
    ``connection_invalidated``, but no ``OperationalError``."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


HEALTH_TIMEOUT_S = 5.0


def newest_first(state: JobState) -> tuple[ColumnElement[Any], ...]:
    """The order of every job list: finished jobs newest finished first, through their
    index; the others newest created first."""
    if state in FINISHED_STATES:
        return (JOBS.c.finished_at_ms.desc(), JOBS.c.seq.desc())
    return (JOBS.c.created_at_ms.desc(), JOBS.c.seq.desc())


class LocalAdmin(PolledStore):
    """Transactions, wake-ups and the admin operations of the local store."""

    kind = "local"
    _engine: AsyncEngine
    _runner: TxRunner
    _dialect: str

    # -- plumbing ----------------------------------------------------------------------

    async def _run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T:
        """Run ``body`` in one transaction; outages become ``StoreUnavailableError``."""
        try:
            return await self._runner.run(body, readonly=readonly)
        except (DBAPIError, OSError) as exc:
            if not unreachable(exc):
                raise
            raise StoreUnavailableError(f"local job store: {type(exc).__name__}") from exc

    def _notify(self, queue: str) -> None:
        """Wake this process's ``wait_for_work`` callers on ``queue``."""
        self._wakeups.notify(queue)

    # -- worker heartbeats (statements in ``stores.local.worker_rows``) -----------------

    async def record_worker(
        self,
        worker_id: str,
        host: str,
        pid: int,
        queues: list[str],
        started_at_ms: int,
        *,
        details: WorkerDetails | None = None,
    ) -> None:
        """Say that worker ``worker_id`` is alive now, and what it does (an upsert)."""
        statement = upsert_worker(
            self._dialect, worker_id, host, pid, queues, started_at_ms, self._now(), details
        )
        await self._run(lambda conn: conn.execute(statement))

    async def forget_worker(self, worker_id: str) -> None:
        """A worker that stopped cleanly leaves the live list at once; its row stays
        an hour, listed as recently gone."""
        now = self._now()
        await self._run(lambda conn: mark_stopped(conn, worker_id, now))

    async def live_workers(self, seen_since_ms: int) -> list[dict[str, Any]]:
        """Workers seen at or after ``seen_since_ms`` that did not stop; rows an hour
        older are deleted."""
        cutoff = seen_since_ms - WORKER_RETENTION_MS
        return await self._run(
            lambda conn: read_workers(conn, seen_since_ms, cutoff, live_only=True)
        )

    async def recent_workers(self) -> list[dict[str, Any]]:
        """Every worker seen within the last hour, live or gone (the workers view)."""
        since = self._now() - WORKER_RETENTION_MS
        return await self._run(lambda conn: read_workers(conn, since, since, live_only=False))

    # -- monitoring --------------------------------------------------------------------

    async def counts(self, queue: str) -> dict[JobState, int]:
        self._config(queue)

        def body(conn: Connection) -> dict[JobState, int]:
            paused = read_switches(conn, queue).paused
            rows = conn.execute(
                select(JOBS.c.state, func.count())
                .where(JOBS.c.queue == queue)
                .group_by(JOBS.c.state)
            )
            counts = dict.fromkeys(COUNTED_STATES, 0)
            for state, count in rows:
                counts[shown_state(state, paused)] += count
            return counts

        return await self._run(body, readonly=True)

    async def list_jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        self._config(queue)
        wanted = JobState(state)

        def body(conn: Connection) -> list[JobRecord]:
            paused = read_switches(conn, queue).paused
            stored = stored_state(wanted, paused)
            if stored is None or limit <= 0:
                return []
            order = newest_first(wanted)
            rows = conn.execute(
                select(JOBS)
                .where(JOBS.c.queue == queue, JOBS.c.state == stored)
                .order_by(*order)
                .offset(max(offset, 0))
                .limit(limit)
            )
            return [record_from_row(row, paused) for row in rows]

        return await self._run(body, readonly=True)

    async def _filtered(self, queue: str, keep: JobFilter) -> tuple[list[JobRecord], int, bool]:
        """In SQL, exact whatever the queue holds: a company's jobs from the (queue,
        company_id, state) index; a search by ``LIKE`` on the name, the id and the
        payload's JSON text (any case, wildcards in the text taken literally)."""
        where: list[ColumnElement[bool]] = []
        if keep.text is not None:
            needle = keep.text.casefold()
            where.append(
                or_(
                    func.lower(JOBS.c.name).contains(needle, autoescape=True),
                    func.lower(JOBS.c.id).contains(needle, autoescape=True),
                    func.lower(cast(JOBS.c.data, Text)).contains(needle, autoescape=True),
                )
            )
        if keep.company_id is not None:
            where.append(JOBS.c.company_id == keep.company_id)
        return await self._filtered_page(queue, keep.state, where, keep.offset, keep.limit)

    async def _filtered_page(
        self,
        queue: str,
        state: JobState,
        where: list[ColumnElement[bool]],
        offset: int,
        limit: int,
    ) -> tuple[list[JobRecord], int, bool]:
        """A page of the jobs in ``state`` that also match ``where``, newest first, and
        how many match (exact: SQL sees the whole queue, so never truncated)."""
        self._config(queue)
        wanted = JobState(state)

        def body(conn: Connection) -> tuple[list[JobRecord], int, bool]:
            paused = read_switches(conn, queue).paused
            stored = stored_state(wanted, paused)
            if stored is None:
                return [], 0, False
            matching = [JOBS.c.queue == queue, JOBS.c.state == stored, *where]
            total = conn.scalar(select(func.count()).select_from(JOBS).where(*matching)) or 0
            rows = conn.execute(
                select(JOBS)
                .where(*matching)
                .order_by(*newest_first(wanted))
                .offset(max(offset, 0))
                .limit(limit)
            )
            return [record_from_row(row, paused) for row in rows], int(total), False

        return await self._run(body, readonly=True)

    async def get_job(self, queue: str, job_id: str) -> JobRecord | None:
        self._config(queue)

        def body(conn: Connection) -> JobRecord | None:
            row = conn.execute(
                select(JOBS).where(JOBS.c.queue == queue, JOBS.c.id == job_id)
            ).first()
            if row is None:
                return None
            logs = conn.scalars(
                select(LOGS.c.line).where(LOGS.c.job_seq == row.seq).order_by(LOGS.c.seq)
            )
            return record_from_row(row, read_switches(conn, queue).paused, list(logs))

        return await self._run(body, readonly=True)

    async def oldest_waiting_ms(self, queue: str) -> int | None:
        """Creation time of the job waiting longest, found through the due-time index.

        The job that became due first is the one waiting longest; for jobs added
        without a delay that is also the oldest by creation time.
        """
        self._config(queue)

        def body(conn: Connection) -> int | None:
            oldest = conn.scalar(
                select(JOBS.c.created_at_ms)
                .where(JOBS.c.queue == queue, JOBS.c.state == WAITING)
                .order_by(JOBS.c.run_at_ms, JOBS.c.seq)
                .limit(1)
            )
            return None if oldest is None else int(oldest)

        return await self._run(body, readonly=True)

    async def finished_per_minute(
        self, queue: str, since_ms: int, until_ms: int
    ) -> list[tuple[JobState, int, int]]:
        self._config(queue)
        minute = ((JOBS.c.finished_at_ms - since_ms) // 60_000).label("minute")

        def body(conn: Connection) -> list[tuple[JobState, int, int]]:
            found: list[tuple[JobState, int, int]] = []
            for state in (COMPLETED, FAILED):
                rows = conn.execute(
                    select(minute, func.count())
                    .where(
                        JOBS.c.queue == queue,
                        JOBS.c.state == state,
                        JOBS.c.finished_at_ms >= since_ms,
                        JOBS.c.finished_at_ms < until_ms,
                    )
                    .group_by(minute)
                )
                found += [
                    (JobState(state), since_ms + int(n) * 60_000, int(count)) for n, count in rows
                ]
            return found

        return await self._run(body, readonly=True)

    async def finished_timings(
        self, queue: str, since_ms: int, until_ms: int, *, bucket_ms: int, per_bucket: int
    ) -> list[JobTiming]:
        """One statement (``stores.local.timings``): window functions pick the sample."""
        self._config(queue)
        return await self._run(
            lambda conn: read_timings(conn, queue, since_ms, until_ms, bucket_ms, per_bucket),
            readonly=True,
        )

    async def health(self) -> StoreHealth:
        details = self._database_details()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await self._run(lambda conn: conn.scalar(select(1)), readonly=True)
        except (StoreUnavailableError, TimeoutError) as exc:
            cause = exc.__cause__ or exc
            error = f"database unreachable ({type(cause).__name__})"
            return StoreHealth(self.kind, False, None, details, error=error)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return StoreHealth(self.kind, True, latency_ms, details)

    def _database_details(self) -> dict[str, Any]:
        """Where the jobs live, without user name or password."""
        url = self._engine.url
        details: dict[str, Any] = {"dialect": self._dialect, "driver": url.drivername}
        if self._dialect == "sqlite":
            details["database"] = url.database
        else:
            details.update(host=url.host, port=url.port, database=url.database)
        return details

    # -- operations --------------------------------------------------------------------

    async def retry_job(self, queue: str, job_id: str) -> None:
        self._config(queue)
        now = self._now()

        def body(conn: Connection) -> None:
            _expect_state(conn, queue, job_id, FAILED, "retry")
            conn.execute(_back_to_waiting(now, queue, JOBS.c.id == job_id))

        await self._run(body)
        self._notify(queue)

    async def retry_failed(self, queue: str) -> int:
        self._config(queue)
        now = self._now()
        moved = await self._run(lambda conn: conn.execute(_back_to_waiting(now, queue)).rowcount)
        if moved:
            self._notify(queue)
        return int(moved)

    async def remove_job(self, queue: str, job_id: str) -> None:
        self._config(queue)

        def body(conn: Connection) -> None:
            state = _state_of(conn, queue, job_id)
            if state == JobState.ACTIVE.value:
                raise InvalidJobStateError(queue, job_id, state, "remove")
            # Log lines go with the job (ON DELETE CASCADE).
            conn.execute(delete(JOBS).where(JOBS.c.queue == queue, JOBS.c.id == job_id))

        await self._run(body)

    async def clean(
        self, queue: str, state: JobState, *, older_than_ms: int = 0, limit: int = 0
    ) -> int:
        self._config(queue)
        state, cutoff = clean_bounds(state, older_than_ms, self._now())
        age = JOBS.c.finished_at_ms if state in FINISHED_STATES else JOBS.c.created_at_ms

        def body(conn: Connection) -> int:
            stored = stored_state(state, read_switches(conn, queue).paused)
            if stored is None:
                return 0
            doomed = (
                select(JOBS.c.seq)
                .where(JOBS.c.queue == queue, JOBS.c.state == stored, age <= cutoff)
                .order_by(age, JOBS.c.seq)
                .with_for_update(skip_locked=True)
            )
            if limit > 0:
                doomed = doomed.limit(limit)
            return int(conn.execute(delete(JOBS).where(JOBS.c.seq.in_(doomed))).rowcount)

        return await self._run(body)

    async def pause(self, queue: str) -> None:
        self._config(queue)
        await self._run(lambda conn: conn.execute(upsert_pause(self._dialect, queue, True)))

    async def resume(self, queue: str) -> None:
        self._config(queue)
        await self._run(lambda conn: conn.execute(upsert_pause(self._dialect, queue, False)))
        self._notify(queue)

    async def is_paused(self, queue: str) -> bool:
        self._config(queue)
        return await self._run(lambda conn: read_switches(conn, queue).paused, readonly=True)

    async def promote(self, queue: str, job_id: str) -> None:
        self._config(queue)
        now = self._now()

        def body(conn: Connection) -> None:
            _expect_state(conn, queue, job_id, DELAYED, "promote")
            conn.execute(
                update(JOBS)
                .where(JOBS.c.queue == queue, JOBS.c.id == job_id)
                .values(state=WAITING, run_at_ms=now, delay_ms=0)
            )

        await self._run(body)
        self._notify(queue)


def _state_of(conn: Connection, queue: str, job_id: str) -> str:
    """The stored state of a job, locked until the transaction ends."""
    state = conn.scalar(
        select(JOBS.c.state).where(JOBS.c.queue == queue, JOBS.c.id == job_id).with_for_update()
    )
    if state is None:
        raise JobNotFoundError(queue, job_id)
    return str(state)


def _expect_state(conn: Connection, queue: str, job_id: str, expected: str, operation: str) -> None:
    state = _state_of(conn, queue, job_id)
    if state != expected:
        shown = shown_state(state, read_switches(conn, queue).paused)
        raise InvalidJobStateError(queue, job_id, shown.value, operation)


def _back_to_waiting(now: int, queue: str, which: ColumnElement[bool] | None = None) -> Any:
    """Failed job(s) back to waiting, as BullMQ's retry does (``retried_values``)."""
    where = [JOBS.c.queue == queue, JOBS.c.state == FAILED]
    if which is not None:
        where.append(which)
    return update(JOBS).where(*where).values(retried_values(now))
