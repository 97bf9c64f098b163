"""A company's load on a queue, counted in the stores (for ``ils.jobs.fairness``).

Jobs already carry their company (``JobOptions.company_id``: a column of the local
store with its index, a sorted set per company and queue in Redis), and a job's class
is its priority band, so no bookkeeping of our own is needed: the stores' own state is
the count, and a job that finishes, fails or is removed stops counting by itself.

* **Local store and outbox** (SQL): the company's jobs of the band waiting, delayed or
  active, and those added within the hour; plus the outbox rows not yet relayed to
  Redis. Counted in the request's transaction, which first serialises with the
  company's other enqueues on that queue (SQLite: the process's write turn, already
  held by a write request; PostgreSQL: a transaction-scoped advisory lock), so two
  concurrent requests cannot both take the last place or the same level. Jobs the
  same transaction queued earlier count too (flushed outbox rows; the local store's
  rows still pending for the commit).
* **Redis** (one Lua script): the band's slice of the ``prioritized`` set (its score
  is ``priority * 2**32 + counter``), and the ``active`` list and ``delayed`` set, each
  id kept when it is in the company's set; the company's set scored by add time gives
  the hour's jobs. Reads scale with the band's waiting jobs (bounded by the quotas of
  all companies), not with the queue. While the gate is down Redis counts nothing: the
  jobs queued meanwhile go to the local store, which is counted.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Final

from sqlalchemy import Connection, and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ils.errors import StoreUnavailableError
from ils.jobs.fairness import CompanyLoad
from ils.jobs.gate import RedisGate
from ils.jobs.outbox import OutboxRow
from ils.jobs.stores.local.sql import JOBS
from ils.jobs.stores.local.store import PENDING_JOBS_KEY, LocalJobStore
from ils.jobs.stores.redis.bull import unavailable_guard
from ils.jobs.stores.redis.store import RedisJobStore

#: States in which a job still holds its company's place.
OUTSTANDING: Final = ("waiting", "delayed", "active")
#: BullMQ's ``prioritized`` score: ``priority * PRIORITY_SCALE + counter``.
PRIORITY_SCALE: Final = 0x100000000

COUNT_LUA: Final = """
local low, high = tonumber(ARGV[1]), tonumber(ARGV[2])
local prefix = ARGV[5]
local function mine(id)
  return redis.call("ZSCORE", KEYS[1], id)
end
local function in_band(id)
  local p = tonumber(redis.call("HGET", prefix .. id, "priority") or "0") or 0
  return p >= low and p <= high
end
local outstanding = 0
for _, id in ipairs(redis.call("ZRANGEBYSCORE", KEYS[2], ARGV[3], ARGV[4])) do
  if mine(id) then outstanding = outstanding + 1 end
end
for _, id in ipairs(redis.call("LRANGE", KEYS[3], 0, -1)) do
  if mine(id) and in_band(id) then outstanding = outstanding + 1 end
end
for _, id in ipairs(redis.call("ZRANGE", KEYS[4], 0, -1)) do
  if mine(id) and in_band(id) then outstanding = outstanding + 1 end
end
local recent, oldest = 0, ""
local added = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. ARGV[6], "+inf", "WITHSCORES")
for i = 1, #added, 2 do
  if in_band(added[i]) then
    recent = recent + 1
    if oldest == "" then oldest = added[i + 1] end
  end
end
return {outstanding, recent, oldest}
"""


def lock_key(queue: str, company_id: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock of (queue, company)."""
    digest = hashlib.sha256(f"ils-fairness:{queue}:{company_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def local_load(
    conn: Connection, queue: str, company_id: str, priorities: tuple[int, int], since_ms: int
) -> CompanyLoad:
    """The company's load in the local job store and the outbox, on ``conn``."""
    low, high = priorities
    outbox = OutboxRow.__table__
    in_jobs = and_(
        JOBS.c.queue == queue,
        JOBS.c.company_id == company_id,
        JOBS.c.priority.between(low, high),
    )
    in_outbox = and_(
        outbox.c.queue == queue,
        outbox.c.company_id == company_id,
        outbox.c.priority.between(low, high),
    )
    outstanding = conn.execute(
        select(func.count()).select_from(JOBS).where(in_jobs, JOBS.c.state.in_(OUTSTANDING))
    ).scalar_one()
    recent, oldest = conn.execute(
        select(func.count(), func.min(JOBS.c.created_at_ms)).where(
            in_jobs, JOBS.c.created_at_ms > since_ms
        )
    ).one()
    # Not relayed yet: outstanding, and added within the hour as far as quotas go.
    held, held_oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at_ms)).where(in_outbox)
    ).one()
    return CompanyLoad(int(outstanding), int(recent), oldest) + CompanyLoad(
        int(held), int(held), held_oldest
    )


def pending_load(
    session: AsyncSession, queue: str, company_id: str, priorities: tuple[int, int]
) -> CompanyLoad:
    """The jobs this transaction queued in local mode: the local store writes them just
    before the commit (``LocalJobStore.add_in_session``), so SQL cannot see them yet."""
    low, high = priorities
    rows = session.sync_session.info.get(PENDING_JOBS_KEY, [])
    mine = [
        row
        for row in rows
        if row["queue"] == queue
        and row["company_id"] == company_id
        and low <= row["priority"] <= high
    ]
    oldest = min((int(row["created_at_ms"]) for row in mine), default=None)
    return CompanyLoad(len(mine), len(mine), oldest)


class StoreLoadCounter:
    """:class:`ils.jobs.fairness.LoadCounter` over the job system's stores."""

    def __init__(
        self, local: LocalJobStore, redis: RedisJobStore | None, gate: RedisGate | None
    ) -> None:
        self.local = local
        self.redis = redis
        self.gate = gate

    async def load(
        self,
        queue: str,
        company_id: str,
        priorities: tuple[int, int],
        since_ms: int,
        session: AsyncSession | None,
    ) -> CompanyLoad:
        """The company's load over every store (see the module docstring)."""

        def count(conn: Connection) -> CompanyLoad:
            return local_load(conn, queue, company_id, priorities, since_ms)

        if session is None:
            load = await self.local.transactions.run(count, readonly=True)
        else:
            conn = await session.connection()
            if conn.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                await conn.execute(lock, {"key": lock_key(queue, company_id)})
            await session.flush()  # outbox rows recorded earlier in this transaction
            load = await conn.run_sync(count) + pending_load(session, queue, company_id, priorities)
        if self.redis is not None and self.gate is not None and self.gate.up:
            load = load + await self._redis_load(queue, company_id, priorities, since_ms)
        return load

    async def _redis_load(
        self, queue: str, company_id: str, priorities: tuple[int, int], since_ms: int
    ) -> CompanyLoad:
        """The company's load in Redis; nothing when Redis fails while read (an outage
        is the gate's business: the enqueue that follows falls back as usual)."""
        assert self.redis is not None
        low, high = priorities
        # The store's shared client and queue objects: the count is a read of BullMQ's
        # own keys, next to the monitoring reads of ``stores.redis.admin``.
        bull = self.redis._bull(queue)
        client: Any = self.redis._shared()
        keys = [
            bull.company_key(company_id),
            bull.keys["prioritized"],
            bull.keys["active"],
            bull.keys["delayed"],
        ]
        args = [
            low,
            high,
            low * PRIORITY_SCALE,
            (high + 1) * PRIORITY_SCALE - 1,
            bull.keys[""],
            since_ms,
        ]
        try:
            with unavailable_guard():
                outstanding, recent, oldest = await client.register_script(COUNT_LUA)(
                    keys=keys, args=args
                )
        except StoreUnavailableError as exc:
            logging.getLogger(__name__).warning("fairness count skipped Redis: %s", exc)
            return CompanyLoad(0, 0)
        oldest_text = oldest.decode() if isinstance(oldest, bytes) else str(oldest)
        return CompanyLoad(int(outstanding), int(recent), int(oldest_text) if oldest_text else None)
