"""The local job store: jobs in the app database (SQLite or PostgreSQL).

It is what runs when Redis is not configured, and what takes jobs when Redis is down,
so it keeps BullMQ's behaviour (priorities, delays, back-off, rate limits, locks,
stalled-job recovery, retention) and the contract suite holds it to the Redis store's.

Where the rest lives: tables in ``schema``; claiming, the rate limiter and retention
in ``claim``; monitoring and admin operations in ``admin``; how a transaction runs in
:mod:`ils.db.transactions`. Every operation is one short transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from ils.clock import Clock
from ils.db.transactions import Transactions, TxRunner, WriteTurn
from ils.errors import JobNotFoundError, LockLostError
from ils.jobs.catalogue import Catalogue, QueueConfig
from ils.jobs.model import ClaimedJob, Fetch, JobState, NewJob
from ils.jobs.stores.local.admin import LocalAdmin
from ils.jobs.stores.local.claim import (
    HOLDING,
    RetentionSchedule,
    claim,
    complete,
    holding_params,
    prune,
    read_switches,
    refund_rate_token,
    take_rate_token,
)
from ils.jobs.stores.local.readiness import (
    DueTimes,
    ReadinessBoard,
    read_due_times,
    readiness_query,
)
from ils.jobs.stores.local.sql import (
    ACTIVE,
    COMPLETED,
    DELAYED,
    FAILED,
    INSERT_JOB,
    JOBS,
    LOGS,
    STALLED_REASON,
    WAITING,
    check_new_job,
    json_value,
    new_job_values,
    shown_state,
)
from ils.jobs.stores.waiting import Wakeups

#: ``Session.info`` keys: jobs added in the open transaction, and the queues the last
#: commit added to (whose idle workers to wake).
PENDING_JOBS_KEY = "ils_local_pending_jobs"
COMMITTED_QUEUES_KEY = "ils_local_committed_queues"


def _insert_pending_jobs(sync_session: Session) -> None:
    """Before commit: write the transaction's jobs in one statement (the session runs
    this inside its greenlet, so the sync call works on every async driver)."""
    rows: list[dict[str, Any]] = sync_session.info.get(PENDING_JOBS_KEY, [])
    if rows:
        sync_session.connection().execute(INSERT_JOB, rows)
        sync_session.info[COMMITTED_QUEUES_KEY] = {row["queue"] for row in rows}
        rows.clear()


def _drop_pending_jobs(sync_session: Session) -> None:
    sync_session.info.get(PENDING_JOBS_KEY, []).clear()
    sync_session.info.pop(COMMITTED_QUEUES_KEY, None)


class LocalJobStore(LocalAdmin):
    """The job store on the app database; one instance per process is enough.

    Args:
        engine: the app database; the store's transactions share its pool and, on
            SQLite, the process's write turn (see :mod:`ils.db.transactions`).
        catalogue: the queues; queue arguments are its keys.
        clock: time source of every timestamp, lock, delay and window. Claims, locks
            and completions read it inside their transaction, after any wait for the
            write lock: a time read before the wait would date a start too early and
            put it in a rate-limit window that has already closed.
        max_stalled_count: how many times a job may lose its worker and go back to
            waiting before it fails.
        poll_interval_ms: how often ``wait_for_work`` looks for jobs added by other
            processes (jobs added by this one wake it at once); every queue's waiters
            share one read of the store per half interval (``ReadinessBoard``).
    """

    kind = "local"

    def __init__(
        self,
        engine: AsyncEngine,
        catalogue: Catalogue,
        *,
        clock: Clock | None = None,
        max_stalled_count: int = 1,
        poll_interval_ms: int = 100,
        write_turn: WriteTurn | None = None,
    ) -> None:
        super().__init__(
            catalogue,
            clock=clock,
            max_stalled_count=max_stalled_count,
            poll_interval_ms=poll_interval_ms,
            wakeups=Wakeups(),
        )
        self._engine = engine
        #: The process's turn for SQLite writers; the web app's write requests take it
        #: too (``JobSystem.write_turn``), so writers of one process queue in order.
        self.write_turn = write_turn or WriteTurn()
        self._runner = Transactions(engine, self.write_turn)
        self._dialect = engine.dialect.name
        self._retention = RetentionSchedule()
        self._readiness = ReadinessBoard(self._read_due_times, fresh_s=self._poll_s / 2)
        self._readiness_queries: dict[tuple[str, ...], Select[tuple[object, ...]]] = {}

    @property
    def transactions(self) -> TxRunner:
        """How this store runs a transaction; the outbox relay uses it too, so its
        writes take the same short, await-free path to the write lock."""
        return self._runner

    # -- producers -------------------------------------------------------------------

    async def add(self, queue: str, job: NewJob) -> str:
        return (await self.add_bulk(queue, [job]))[0]

    async def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        rows = self._rows(queue, jobs)
        if not rows:
            return []
        await self._run(lambda conn: conn.execute(INSERT_JOB, rows))
        self._notify(queue)
        return [row["id"] for row in rows]

    async def add_in_session(
        self, session: AsyncSession, queue: str, jobs: Sequence[NewJob]
    ) -> list[str]:
        """Add jobs inside the caller's transaction: they exist exactly when it commits.

        This is transactional enqueue in local mode: the jobs table lives in the app
        database, so no outbox and no relay are needed. The jobs are checked now (a bad
        one raises here, in the caller's code) and written just before the commit, all
        of the transaction's jobs in one insert: an order that queues eight jobs pays
        for one statement, not eight. Workers of this process are woken after the
        commit; a rollback drops them with everything else.
        """
        rows = self._rows(queue, jobs)
        if not rows:
            return []
        sync_session = session.sync_session
        pending = sync_session.info.get(PENDING_JOBS_KEY)
        if pending is None:
            # Once per session (sessions are short-lived, the hooks go with them).
            pending = sync_session.info[PENDING_JOBS_KEY] = []
            event.listen(sync_session, "before_commit", _insert_pending_jobs)
            event.listen(sync_session, "after_commit", self._wake_after_commit)
            event.listen(sync_session, "after_rollback", _drop_pending_jobs)
        pending.extend(rows)
        return [row["id"] for row in rows]

    def _wake_after_commit(self, sync_session: Session) -> None:
        for queue in sync_session.info.pop(COMMITTED_QUEUES_KEY, ()):
            self._notify(queue)

    def _rows(self, queue: str, jobs: Sequence[NewJob]) -> list[dict[str, Any]]:
        config = self._config(queue)
        for job in jobs:
            check_new_job(queue, job)
        now = self._now()
        return [new_job_values(config, job, now) for job in jobs]

    def in_session(self, session: AsyncSession) -> LocalJobStore:
        """This store with its transactions run as savepoints of ``session``'s: its
        changes commit or roll back with the caller's (an admin action and its audit
        row), and this process's workers are woken after that commit."""
        from ils.jobs.stores.local.session import LocalInSession

        return LocalInSession(self, session)

    # -- workers ---------------------------------------------------------------------

    async def fetch(self, queue: str, token: str) -> Fetch:
        config = self._config(queue)
        return await self._run(lambda conn: claim(conn, config, token, self._clock))

    async def take_rate_token(self, queue: str) -> tuple[int, int]:
        """Count a start in the queue's rate-limit window for a job another store runs:
        ``(0, window start)`` when counted, else ``(ms to wait, 0)`` (see ``local.claim``)."""
        config = self._config(queue)
        if config.rate_limit is None:
            return 0, 0
        return await self._run(lambda conn: take_rate_token(conn, config, self._clock))

    async def refund_rate_token(self, queue: str, window_start_ms: int) -> None:
        """Give back a token taken by ``take_rate_token`` that started nothing."""
        await self._run(lambda conn: refund_rate_token(conn, queue, window_start_ms))

    async def complete(
        self, queue: str, job: ClaimedJob, result: Any, *, fetch_next: bool = False
    ) -> Fetch | None:
        config = self._config(queue)
        json_value(result, queue, job.record.name, "result")
        plan = self._retention.plan(queue, COMPLETED, config.keep_completed, self._now())

        def body(conn: Connection) -> Fetch | None:
            now = self._now()
            if not complete(conn, queue, job, result, now):
                raise LockLostError(queue, job.id)
            prune(conn, queue, COMPLETED, config.keep_completed, now, plan)
            return claim(conn, config, job.token, self._clock) if fetch_next else None

        return await self._run(body)

    async def _fail(
        self, queue: str, job: ClaimedJob, reason: str, stacktrace: str | None, retry: bool
    ) -> JobState:
        config = self._config(queue)
        plan = self._retention.plan(queue, FAILED, config.keep_failed, self._now())

        def body(conn: Connection) -> JobState:
            now = self._now()
            state = _record_failure(conn, config, job, reason, stacktrace, retry, now)
            if state == FAILED:
                prune(conn, queue, FAILED, config.keep_failed, now, plan)
            paused = state == WAITING and read_switches(conn, queue).paused
            return shown_state(state, paused)

        shown = await self._run(body)
        if shown is not JobState.FAILED:
            self._notify(queue)
        return shown

    async def extend_locks(self, queue: str, jobs: Sequence[ClaimedJob]) -> list[str]:
        config = self._config(queue)
        if not jobs:
            return []
        by_token: dict[str, list[str]] = {}
        for job in jobs:
            by_token.setdefault(job.token, []).append(job.id)

        def body(conn: Connection) -> set[tuple[str, str]]:
            now = self._now()
            kept: set[tuple[str, str]] = set()
            for token, ids in by_token.items():
                extended = conn.execute(
                    update(JOBS)
                    .where(
                        JOBS.c.queue == queue,
                        JOBS.c.id.in_(ids),
                        JOBS.c.state == ACTIVE,
                        JOBS.c.lock_token == token,
                        JOBS.c.lock_until_ms >= now,
                    )
                    .values(lock_until_ms=now + config.lock_duration_ms)
                    .returning(JOBS.c.id)
                )
                kept.update((token, job_id) for job_id in extended.scalars())
            return kept

        kept = await self._run(body)
        return [job.id for job in jobs if (job.token, job.id) not in kept]

    async def recover_stalled(self, queue: str) -> list[str]:
        config = self._config(queue)
        now = self._now()
        # A read first: the check runs every few seconds per queue and process, and
        # finding nothing must not take SQLite's one write lock.
        if not await self._run(lambda conn: _any_stalled(conn, queue, now), readonly=True):
            return []
        handled, requeued = await self._run(
            lambda conn: _recover(conn, config, self._max_stalled, now)
        )
        if requeued:
            self._notify(queue)
        return handled

    async def update_progress(self, queue: str, job: ClaimedJob, progress: Any) -> None:
        self._config(queue)
        json_value(progress, queue, job.record.name, "progress")

        def body(conn: Connection) -> None:
            updated = conn.execute(
                update(JOBS)
                .where(JOBS.c.queue == queue, JOBS.c.id == job.id)
                .values(progress=progress)
            )
            if updated.rowcount != 1:
                raise JobNotFoundError(queue, job.id)

        await self._run(body)

    async def add_log(self, queue: str, job: ClaimedJob, line: str) -> None:
        self._config(queue)
        await self._run(lambda conn: _insert_log(conn, queue, job.id, line))

    async def add_log_in(
        self, session: AsyncSession, queue: str, job: ClaimedJob, line: str
    ) -> None:
        """The line as one more statement of the handler's transaction when that is in
        this store's database: a notification job wrote its line in a SQLite write
        transaction of its own, a third of the job's commits (bench/users.py)."""
        if session.sync_session.get_bind() is not self._engine.sync_engine:
            await self.add_log(queue, job, line)
            return
        self._config(queue)
        connection = await session.connection()
        await connection.run_sync(lambda conn: _insert_log(conn, queue, job.id, line))

    async def _ready_in_s(self, queue: str) -> float | None:
        # One ``now`` for both: "due in 0 s" must be an answer the board used up, or
        # a later wait would be told "ready" by the same entry.
        now = self._now()
        due = await self._readiness.due_at_ms(queue, now)
        return None if due is None else max(due - now, 0) / 1000

    def _notify(self, queue: str) -> None:
        self._readiness.forget(queue)
        super()._notify(queue)

    async def pause(self, queue: str) -> None:
        await super().pause(queue)
        # This process's own waiters must not be told "ready" from before the pause.
        self._readiness.forget(queue)

    async def _read_due_times(self, queues: tuple[str, ...]) -> DueTimes:
        query = self._readiness_queries.get(queues)
        if query is None:
            # Built once per set of queues: the set settles as the workers start.
            query = self._readiness_queries[queues] = readiness_query(queues)
        return await self._run(lambda conn: read_due_times(conn, queues, query), readonly=True)

    async def close(self) -> None:
        """Wake every waiter and release the store's connections."""
        await super().close()
        await self._engine.dispose()


def _insert_log(conn: Connection, queue: str, job_id: str, line: str) -> None:
    """Append ``line`` to the job's log (``JobNotFoundError`` when the job is gone)."""
    seq = conn.scalar(select(JOBS.c.seq).where(JOBS.c.queue == queue, JOBS.c.id == job_id))
    if seq is None:
        raise JobNotFoundError(queue, job_id)
    conn.execute(insert(LOGS).values(job_seq=seq, line=str(line)))


def _record_failure(
    conn: Connection,
    config: QueueConfig,
    job: ClaimedJob,
    reason: str,
    stacktrace: str | None,
    retry: bool,
    now: int,
) -> str:
    """Record a failed attempt; returns the stored state it leads to.

    The job's own attempts and back-off are read under the lock (they were fixed at
    add time), so the decision does not trust the worker's copy of the record.
    """
    held = conn.execute(
        select(JOBS.c.attempts, JOBS.c.attempts_made, JOBS.c.backoff_delay_ms, JOBS.c.stacktrace)
        .where(*HOLDING)
        .with_for_update(),
        holding_params(config.key, job, now),
    ).first()
    if held is None:
        raise LockLostError(config.key, job.id)
    made = held.attempts_made + 1
    traces = list(held.stacktrace or [])
    if stacktrace is not None:
        traces.append(stacktrace)
    values: dict[str, Any] = {
        "attempts_made": made,
        "failed_reason": reason,
        "stacktrace": traces,
        "lock_token": None,
        "lock_until_ms": None,
    }
    if retry and made < held.attempts:
        backoff = config.backoff_ms(made, held.backoff_delay_ms)
        state = DELAYED if backoff > 0 else WAITING
        values.update(state=state, run_at_ms=now + backoff, delay_ms=backoff)
    else:
        state = FAILED
        values.update(state=FAILED, finished_at_ms=now)
    conn.execute(update(JOBS).where(*HOLDING).values(values), holding_params(config.key, job, now))
    return state


def _stalled_where(queue: str, now: int) -> ColumnElement[bool]:
    """Active jobs of ``queue`` whose lock has run out: their worker stopped."""
    return and_(JOBS.c.queue == queue, JOBS.c.state == ACTIVE, JOBS.c.lock_until_ms < now)


def _any_stalled(conn: Connection, queue: str, now: int) -> bool:
    return conn.scalar(select(JOBS.c.seq).where(_stalled_where(queue, now)).limit(1)) is not None


def _recover(
    conn: Connection, config: QueueConfig, max_stalled: int, now: int
) -> tuple[list[str], bool]:
    """Requeue or fail the active jobs whose lock expired; (ids handled, any requeued)."""
    queue = config.key
    stalled = conn.execute(
        select(JOBS.c.seq, JOBS.c.id, JOBS.c.stalled_count)
        .where(_stalled_where(queue, now))
        .with_for_update(skip_locked=True)
    ).all()
    back = [row.seq for row in stalled if row.stalled_count < max_stalled]
    out = [row.seq for row in stalled if row.stalled_count >= max_stalled]
    released = {"lock_token": None, "lock_until_ms": None}
    if back:
        conn.execute(
            update(JOBS)
            .where(JOBS.c.seq.in_(back))
            .values(state=WAITING, stalled_count=JOBS.c.stalled_count + 1, **released)
        )
    if out:
        conn.execute(
            update(JOBS)
            .where(JOBS.c.seq.in_(out))
            .values(
                state=FAILED,
                stalled_count=JOBS.c.stalled_count + 1,
                attempts_made=JOBS.c.attempts_made + 1,
                failed_reason=STALLED_REASON,
                finished_at_ms=now,
                **released,
            )
        )
        prune(conn, queue, FAILED, config.keep_failed, now)
    return [row.id for row in stalled], bool(back)
