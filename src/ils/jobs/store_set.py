"""The job stores of one process, and which of them are worth asking right now.

The local store is always there; Redis, with its gate, when it is configured. Which
stores hold jobs, and which answer, is asked at each call: Redis is skipped while its
gate is open (an outage), and back in the list when the gate closes. The admin, the
monitor and the ``JobSystem`` all ask this one object, so the rule is written once and
none of them needs the ``JobSystem`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ils.jobs.gate import RedisGate
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.redis.store import RedisJobStore


# Identity equality, and no generated repr (it would print the stores' connections).
@dataclass(frozen=True, eq=False, repr=False)
class JobStores:
    """The local store, and Redis with its gate when configured."""

    local: LocalJobStore
    redis: RedisJobStore | None = None
    gate: RedisGate | None = None

    @property
    def mode(self) -> str:
        """``redis`` when Redis is configured, else ``local``."""
        return "redis" if self.redis is not None else "local"

    @property
    def redis_in_use(self) -> bool:
        """Whether new jobs go to Redis right now."""
        return self.gate is not None and self.gate.up

    def stores(self) -> list[JobStore]:
        """Every store jobs may be in: Redis first, then the local store (in Redis mode
        it holds what was queued while Redis was down)."""
        return [self.redis, self.local] if self.redis is not None else [self.local]

    def reachable_stores(self) -> list[JobStore]:
        """The stores worth asking now (Redis is skipped while the gate is open)."""
        if self.redis is not None and self.redis_in_use:
            return [self.redis, self.local]
        return [self.local]

    def gates(self) -> dict[str, RedisGate | None]:
        """The gate of each store kind, for the runner (only Redis has one)."""
        return {"redis": self.gate} if self.gate is not None else {}
