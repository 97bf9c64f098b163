"""Transactional enqueue: a job recorded in the caller's transaction, relayed after commit.

``Outbox.record`` inserts a row in the same database transaction as the caller's own
changes, so a rolled-back order queues nothing and a committed one always gets its
jobs. After the commit, :class:`OutboxRelay` hands each row to a job store (Redis, or
the local store when Redis is down or not configured) under a job id derived from the
row, so a relay that runs twice (two processes, a crash between add and delete) adds
the job only once while the store still holds it. A periodic sweep relays what a
crash left behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Integer,
    String,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from ils.clock import Clock
from ils.database import Base
from ils.errors import ILSError
from ils.queue.model import JobOptions, JobRef, NewJob
from ils.queue.stores.local_tx import TxRunner

OUTBOX_ID_PREFIX = "tx-"
RELAY_BATCH = 200
CLAIM_MS = 30_000


class OutboxRow(Base):
    """A job waiting to be handed to a store after its transaction committed."""

    __tablename__ = "ils_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
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

    def to_new_job(self) -> NewJob:
        """The job this row stands for, with the row id as its (idempotent) job id."""
        return NewJob(
            self.name,
            self.data,
            JobOptions(
                priority=self.priority,
                delay_ms=self.delay_ms,
                attempts=self.attempts,
                backoff_delay_ms=self.backoff_delay_ms,
                job_id=self.id,
                company_id=self.company_id,
            ),
        )


# Picks the store for a relayed job and adds it there; returns the store kind.
Deliver = Callable[[str, NewJob], Awaitable[str]]


class Outbox:
    """Records jobs in a caller's session and relays them after commit."""

    def __init__(self, transactions: TxRunner, deliver: Deliver, clock: Clock) -> None:
        # The local store's transaction runner: each relay step is one short
        # transaction with no await inside, so the write lock (SQLite's is one per
        # file) is never held while this process's event loop is busy elsewhere.
        self._transactions = transactions
        self._deliver = deliver
        self._clock = clock
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[int]] = set()
        self.logger = logging.getLogger("ils.outbox")

    def record(self, session: AsyncSession, queue: str, job: NewJob) -> JobRef:
        """Add the job to ``session``'s transaction; relay it once that commits."""
        row_id = f"{OUTBOX_ID_PREFIX}{uuid.uuid4().hex}"
        options = job.options
        session.add(
            OutboxRow(
                id=row_id,
                queue=queue,
                name=job.name,
                data=job.data,
                priority=options.priority,
                delay_ms=options.delay_ms,
                attempts=options.attempts,
                backoff_delay_ms=options.backoff_delay_ms,
                company_id=options.company_id,
                created_at_ms=self._clock.now_ms(),
                claimed_until_ms=0,
            )
        )
        self._relay_after_commit(session)
        return JobRef(queue=queue, name=job.name, job_id=row_id, store="outbox")

    def _relay_after_commit(self, session: AsyncSession) -> None:
        """Relay after every commit of this session (the hook is added once per session;
        a relay with nothing pending costs one small query)."""
        sync_session = session.sync_session
        if sync_session.info.get("ils_outbox_hooked"):
            return
        sync_session.info["ils_outbox_hooked"] = True
        loop = asyncio.get_running_loop()

        def after_commit(_session: Any) -> None:
            task = loop.create_task(self.relay())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        event.listen(sync_session, "after_commit", after_commit)

    async def relay(self) -> int:
        """Hand every committed row to a store; returns how many were relayed.

        Rows are claimed for a while before delivery, so two processes relaying at
        once do not both deliver the same row; a claim that outlives a crash expires.
        """
        relayed = 0
        async with self._lock:
            while True:
                rows = await self._claim_batch()
                if not rows:
                    return relayed
                for row in rows:
                    try:
                        await self._deliver(row.queue, row.to_new_job())
                    except ILSError as exc:
                        self.logger.warning("outbox: job %s not relayed yet: %s", row.id, exc)
                        return relayed
                    await self._delete(row.id)
                    relayed += 1

    async def _claim_batch(self) -> list[OutboxRow]:
        now = self._clock.now_ms()
        unclaimed = OutboxRow.claimed_until_ms < now
        # A read first: the sweep of an idle process then takes no write lock at all.
        waiting = await self._transactions.run(
            lambda conn: conn.scalar(select(OutboxRow.id).where(unclaimed).limit(1)),
            readonly=True,
        )
        if waiting is None:
            return []

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
                        .values(claimed_until_ms=now + CLAIM_MS)
                    )
                session.expunge_all()
                return rows

        return await self._transactions.run(claim)

    async def _delete(self, row_id: str) -> None:
        await self._transactions.run(
            lambda conn: conn.execute(delete(OutboxRow).where(OutboxRow.id == row_id))
        )

    async def pending(self) -> int:
        """Rows not yet relayed (for health and tests)."""
        count = await self._transactions.run(
            lambda conn: conn.scalar(select(func.count()).select_from(OutboxRow)),
            readonly=True,
        )
        return int(count or 0)

    async def drain_tasks(self) -> None:
        """Wait for relays started by commits (shutdown and tests)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def sweep_forever(self, interval_s: float) -> None:
        """Relay rows left behind by a crash or a store outage, every ``interval_s``."""
        while True:
            try:
                await self.relay()
            except Exception:
                self.logger.exception("outbox sweep failed")
            await asyncio.sleep(interval_s)
