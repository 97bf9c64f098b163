"""Transactional enqueue: a job recorded in the caller's transaction, relayed after commit.

``Outbox.record`` inserts a row in the same database transaction as the caller's own
changes, so a rolled-back order queues nothing and a committed one always gets its
jobs. After the commit, :meth:`Outbox.relay` hands each row to a job store (Redis, or
the local store when Redis is down or not configured) under a job id derived from the
row, so a relay that runs twice (two processes, a crash between add and delete) adds
the job only once while the store still holds it. A periodic sweep relays what a
crash left behind.

The outbox also holds jobs whose add to Redis had an unknown outcome (it timed out, or
the connection dropped after the command went out): Redis may have the job already, so
running it from the local store could run it twice. Such a *held* row is resolved only
into Redis, by job id, once Redis answers (:meth:`Outbox.relay`), and never runs
locally. How each was resolved is counted in ``ils_fallback_counts``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    String,
    Table,
    and_,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from ils.clock import Clock
from ils.db.engine import Base
from ils.db.transactions import TxRunner
from ils.errors import ILSError, JobSystemError
from ils.ids import ordered_id
from ils.jobs.model import JobOptions, JobRef, NewJob
from ils.jobs.stores.local.sql import insert_ignoring_conflicts

OUTBOX_ID_PREFIX = "tx-"
RELAY_BATCH = 200
#: Where a session keeps the ids of the rows it recorded, until its commit relays them.
_RECORDED_KEY = "ils_outbox_recorded"
CLAIM_MS = 30_000
#: A held row is left to the add still in flight for this long before a relay (of this
#: or another process) resolves it by job id.
HOLD_CLAIM_MS = 5_000

#: How a held job was resolved: its add had reached Redis (it answered late, or the job
#: or its deduplication key was found there), or it had not and was added again.
WAS_IN_REDIS = "was_in_redis"
ADDED_AGAIN = "added_again"
OUTCOMES = (WAS_IN_REDIS, ADDED_AGAIN)
#: The job options an outbox row keeps in columns of the same names (its id stands
#: for ``job_id``), read and written by name so the two cannot drift apart.
_OPTION_COLUMNS = tuple(f.name for f in fields(JobOptions) if f.name != "job_id")


class FallbackCount(Base):
    """How many held jobs were resolved each way, over every process."""

    __tablename__ = "ils_fallback_counts"

    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxRow(Base):
    """A job waiting to be handed to a store after its transaction committed."""

    __tablename__ = "ils_outbox"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    queue: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    delay_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    backoff_delay_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    claimed_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    company_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Set while the job may already be in Redis: resolved into Redis only.
    held_since_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def to_new_job(self) -> NewJob:
        """The job this row stands for, with the row id as its (idempotent) job id."""
        options = {name: getattr(self, name) for name in _OPTION_COLUMNS}
        return NewJob(self.name, self.data, JobOptions(**options, job_id=self.id))


OUTBOX = cast(Table, OutboxRow.__table__)
FALLBACK_COUNTS = cast(Table, FallbackCount.__table__)

# Picks the store for relayed jobs of one queue and adds them there in one call (one
# Redis round trip or one insert); returns the store kind, or HELD when the add's
# outcome is unknown (``in_outbox``: the rows are already there, held in place).
Deliver = Callable[[str, Sequence[NewJob], bool], Awaitable[str]]
# Resolves a held job into Redis by job id: True if it was there already, False if it
# was added now; raises ILSError while Redis cannot tell.
Resolve = Callable[[str, NewJob], Awaitable[bool]]
#: The store kind ``Deliver`` returns for a job left held in the outbox.
HELD = "outbox"


@dataclass(frozen=True, slots=True)
class HeldJobs:
    """What health reports of the held jobs: how many, since when, how resolved."""

    count: int
    oldest_since_ms: int | None
    resolved: dict[str, int]


class Outbox:
    """Records jobs in a caller's session and relays them after commit; holds and
    resolves jobs whose add to Redis had an unknown outcome."""

    def __init__(
        self,
        transactions: TxRunner,
        deliver: Deliver,
        clock: Clock,
        resolve: Resolve | None = None,
        can_resolve: Callable[[], bool] = lambda: True,
    ) -> None:
        # The local store's transaction runner: each relay step is one short
        # transaction with no await inside, so the write lock (SQLite's is one per
        # file) is never held while this process's event loop is busy elsewhere.
        self._transactions = transactions
        self._deliver = deliver
        self._resolve = resolve
        # Held rows wait quietly while Redis is known to be down.
        self._can_resolve = can_resolve
        self._clock = clock
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        self.logger = logging.getLogger(__name__)

    def record(self, session: AsyncSession, queue: str, job: NewJob) -> JobRef:
        """Add the job to ``session``'s transaction; relay it once that commits."""
        row_id = f"{OUTBOX_ID_PREFIX}{ordered_id()}"
        session.add(OutboxRow(**_row(row_id, queue, job, self._clock.now_ms(), held=None)))
        self._relay_after_commit(session)
        session.sync_session.info.setdefault(_RECORDED_KEY, []).append(row_id)
        return JobRef(queue=queue, name=job.name, job_id=row_id, store="outbox")

    async def hold(self, queue: str, job: NewJob, *, existing: bool = False) -> None:
        """Keep ``job`` (whose add to Redis may or may not have happened) until Redis can
        say: it is then resolved into Redis by its id, never run from the local store.

        ``existing``: the job is an outbox row already (a relay's), marked held in place.
        """
        assert job.options.job_id is not None
        row_id = job.options.job_id
        now = self._clock.now_ms()
        claim_until = now + HOLD_CLAIM_MS

        def body(conn: Connection) -> None:
            if existing:
                conn.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == row_id)
                    .values(held_since_ms=now, claimed_until_ms=claim_until)
                )
                return
            values = _row(row_id, queue, job, now, held=now)
            conn.execute(
                insert_ignoring_conflicts(conn.dialect.name, OUTBOX, "id").values(
                    {**values, "claimed_until_ms": claim_until}
                )
            )

        await self._transactions.run(body)

    def settle_later(self, row_id: str, add: asyncio.Future[Any]) -> None:
        """When the add still in flight for held row ``row_id`` answers, settle the row:
        an add that succeeded means the job is in Redis (the row goes, counted); a failed
        one releases the row and relays at once, which resolves it by job id (or leaves
        it held while the gate says Redis is down, until the gate sees Redis back). Not
        every process runs the outbox sweep: a producer-only one would otherwise leave
        the row held until some other process's sweep came by."""

        def done(future: asyncio.Future[Any]) -> None:
            failed = future.cancelled() or future.exception() is not None
            task = asyncio.get_running_loop().create_task(
                self._release_and_relay(row_id) if failed else self._resolved(row_id, WAS_IN_REDIS)
            )
            self._pending.add(task)
            task.add_done_callback(self._finished)

        add.add_done_callback(done)

    async def _resolved(self, row_id: str, outcome: str) -> None:
        """The held row's job is in Redis now: delete the row and count how, in one
        transaction (a row already gone, settled by another process, counts nothing)."""

        def body(conn: Connection) -> None:
            gone = conn.execute(delete(OutboxRow).where(OutboxRow.id == row_id)).rowcount
            if gone:
                _count(conn, outcome)

        await self._transactions.run(body)

    async def _release_and_relay(self, row_id: str) -> None:
        await self._transactions.run(
            lambda conn: conn.execute(
                update(OutboxRow).where(OutboxRow.id == row_id).values(claimed_until_ms=0)
            )
        )
        await self.relay()

    def _relay_after_commit(self, session: AsyncSession) -> None:
        """After each commit of this session, relay the rows it recorded, by id (the
        hook is added once per session). A rollback forgets them with its rows."""
        sync_session = session.sync_session
        if sync_session.info.get("ils_outbox_hooked"):
            return
        sync_session.info["ils_outbox_hooked"] = True
        loop = asyncio.get_running_loop()

        def after_commit(committed: Session) -> None:
            if row_ids := committed.info.pop(_RECORDED_KEY, None):
                self._start(loop, self.relay_committed(row_ids))

        def after_rollback(rolled_back: Session) -> None:
            rolled_back.info.pop(_RECORDED_KEY, None)

        event.listen(sync_session, "after_commit", after_commit)
        event.listen(sync_session, "after_rollback", after_rollback)

    def relay_soon(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start a relay of every waiting row in the background (when Redis is back)."""
        self._start(loop or asyncio.get_running_loop(), self.relay())

    def _start(self, loop: asyncio.AbstractEventLoop, relay: Coroutine[Any, Any, int]) -> None:
        task = loop.create_task(relay)
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget a background relay; say so if it failed (its rows stay claimed for a
        while, then the sweep relays them). The error's kind only: its text may quote
        a statement's parameters."""
        self._pending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.logger.warning(
                "outbox: a relay failed (%s); the sweep will relay its jobs",
                type(error).__name__,
            )

    async def relay_committed(self, row_ids: Sequence[str]) -> int:
        """Relay the rows one commit recorded, by id, beside any other relay.

        Each commit relays its own rows at once: a claim, one add per queue and one
        delete, whatever else is relaying. Before, every commit started a relay of
        every waiting row, one after the other under one lock, an add and a delete
        transaction a row; on PostgreSQL + Redis under 1,000 users (bench/users.py)
        that fell behind by thousands of jobs while the Redis queues stood empty.
        A row another relay has claimed is left to it.
        """
        relayed = 0
        for start in range(0, len(row_ids), RELAY_BATCH):
            batch = row_ids[start : start + RELAY_BATCH]
            unclaimed = and_(OutboxRow.id.in_(batch), OutboxRow.claimed_until_ms < self._now())
            rows = await self._claim(unclaimed)
            settled = await self._relay_rows(rows)
            relayed += settled
            if settled < len(rows):
                break  # a store error: the rest waits for the sweep
        return relayed

    async def relay(self) -> int:
        """Hand every committed row to a store and resolve held rows into Redis; returns
        how many rows were settled (the sweep, and when Redis is back).

        Rows are claimed for a while before delivery, so two processes relaying at
        once do not both deliver the same row; a claim that outlives a crash expires.
        """
        relayed = 0
        async with self._lock:
            while True:
                rows = await self._claim_batch()
                if not rows:
                    return relayed
                settled = await self._relay_rows(rows)
                relayed += settled
                if settled < len(rows):
                    return relayed

    async def _relay_rows(self, rows: list[OutboxRow]) -> int:
        """Settle claimed rows: held ones resolved into Redis one by one, the others
        added per queue in one call each and deleted in one statement. On a store
        error the rows not settled are released to the next relay at once."""
        settled = 0
        try:
            for row in rows:
                if row.held_since_ms is not None:
                    await self._resolve_held(row)
                    settled += 1
            for queue, queued in _fresh_by_queue(rows).items():
                await self._deliver_rows(queue, queued)
                settled += len(queued)
        except ILSError as exc:
            self.logger.warning("outbox: jobs not relayed yet: %s", exc)
            await self._release_rows([r.id for r in rows])
        return settled

    async def _deliver_rows(self, queue: str, rows: list[OutboxRow]) -> None:
        """One queue's rows in one add, then one delete (rows left held stay)."""
        if await self._deliver(queue, [row.to_new_job() for row in rows], True) != HELD:
            ids = [row.id for row in rows]
            await self._transactions.run(
                lambda conn: conn.execute(delete(OutboxRow).where(OutboxRow.id.in_(ids)))
            )

    async def _resolve_held(self, row: OutboxRow) -> None:
        if self._resolve is None:
            raise JobSystemError("a held job needs Redis, which is not configured")
        was_there = await self._resolve(row.queue, row.to_new_job())
        await self._resolved(row.id, WAS_IN_REDIS if was_there else ADDED_AGAIN)

    async def _release_rows(self, row_ids: list[str]) -> None:
        """Give rows claimed but not settled back to the next relay at once."""
        await self._transactions.run(
            lambda conn: conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(row_ids), OutboxRow.claimed_until_ms > 0)
                .values(claimed_until_ms=0)
            )
        )

    def _now(self) -> int:
        return self._clock.now_ms()

    async def _claim_batch(self) -> list[OutboxRow]:
        unclaimed = OutboxRow.claimed_until_ms < self._now()
        if not self._can_resolve():
            unclaimed = and_(unclaimed, OutboxRow.held_since_ms.is_(None))
        # A read first: the sweep of an idle process then takes no write lock at all.
        waiting = await self._transactions.run(
            lambda conn: conn.scalar(select(OutboxRow.id).where(unclaimed).limit(1)),
            readonly=True,
        )
        if waiting is None:
            return []
        return await self._claim(unclaimed)

    async def _claim(self, unclaimed: ColumnElement[bool]) -> list[OutboxRow]:
        """Claim up to a batch of the rows ``unclaimed`` selects, oldest first."""
        claim_until = self._now() + CLAIM_MS

        def claim(conn: Connection) -> list[OutboxRow]:
            with Session(bind=conn, expire_on_commit=False) as session:
                rows = list(
                    session.scalars(
                        select(OutboxRow)
                        .where(unclaimed)
                        .order_by(OutboxRow.created_at_ms)
                        .limit(RELAY_BATCH)
                        .with_for_update(skip_locked=True)
                    ).all()
                )
                if rows:
                    conn.execute(
                        update(OutboxRow)
                        .where(OutboxRow.id.in_([r.id for r in rows]))
                        .values(claimed_until_ms=claim_until)
                    )
                session.expunge_all()
                return rows

        return await self._transactions.run(claim)

    async def pending(self) -> int:
        """Rows not yet relayed, held ones included (for health and tests)."""
        count = await self._transactions.run(
            lambda conn: conn.scalar(select(func.count()).select_from(OutboxRow)),
            readonly=True,
        )
        return int(count or 0)

    async def held(self) -> HeldJobs:
        """The held jobs now and how held jobs were resolved so far (every process)."""

        def body(conn: Connection) -> HeldJobs:
            held = OutboxRow.held_since_ms.is_not(None)
            count, oldest = conn.execute(
                select(func.count(), func.min(OutboxRow.held_since_ms)).where(held)
            ).one()
            resolved = dict.fromkeys(OUTCOMES, 0)
            for outcome, total in conn.execute(
                select(FallbackCount.outcome, FallbackCount.count)
            ).all():
                resolved[outcome] = int(total)
            return HeldJobs(int(count or 0), None if oldest is None else int(oldest), resolved)

        return await self._transactions.run(body, readonly=True)

    async def drain_tasks(self) -> None:
        """Wait for relays started by commits and settlements (shutdown and tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def sweep_forever(self, interval_s: float) -> None:
        """Relay rows left behind by a crash or a store outage, every ``interval_s``."""
        while True:
            try:
                await self.relay()
            except Exception:
                self.logger.exception("outbox sweep failed")
            await asyncio.sleep(interval_s)


def _fresh_by_queue(rows: list[OutboxRow]) -> dict[str, list[OutboxRow]]:
    """The rows not held, grouped by queue in the order they were claimed."""
    grouped: dict[str, list[OutboxRow]] = {}
    for row in rows:
        if row.held_since_ms is None:
            grouped.setdefault(row.queue, []).append(row)
    return grouped


def _row(row_id: str, queue: str, job: NewJob, now: int, *, held: int | None) -> dict[str, Any]:
    """The column values of the outbox row standing for ``job`` (unclaimed)."""
    return {
        "id": row_id,
        "queue": queue,
        "name": job.name,
        "data": job.data,
        **{name: getattr(job.options, name) for name in _OPTION_COLUMNS},
        "created_at_ms": now,
        "claimed_until_ms": 0,
        "held_since_ms": held,
    }


def _count(conn: Connection, outcome: str) -> None:
    """Add one to ``outcome``'s count, creating its row on first use."""
    conn.execute(
        insert_ignoring_conflicts(conn.dialect.name, FALLBACK_COUNTS, "outcome").values(
            outcome=outcome, count=0
        )
    )
    conn.execute(
        update(FallbackCount)
        .where(FallbackCount.outcome == outcome)
        .values(count=FallbackCount.count + 1)
    )
