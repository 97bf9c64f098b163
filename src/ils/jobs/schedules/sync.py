"""BullMQ's job schedulers kept in step with the schedules table (Redis mode only).

In Redis mode each active schedule has a BullMQ job scheduler on the ``scheduled``
queue, so the TypeScript side and ``ils worker`` processes see the same ticks; in
local mode the scheduler loop enqueues due ticks itself and there is nothing to sync.
"""

from __future__ import annotations

from collections.abc import Sequence

from ils.jobs.gate import RedisGate
from ils.jobs.schedules.store import TICK_QUEUE, Schedule
from ils.jobs.stores.redis.store import RedisJobStore


class JobSchedulers:
    """The Redis side of the schedules: whether it is in use, and the sync."""

    def __init__(self, redis: RedisJobStore | None, gate: RedisGate | None) -> None:
        self._redis = redis
        self._gate = gate

    @property
    def in_redis(self) -> bool:
        """Whether ticks come from BullMQ's schedulers now (Redis configured and up)."""
        return self._redis is not None and self._gate is not None and self._gate.up

    async def sync(self, schedules: Sequence[Schedule]) -> int:
        """Make BullMQ's job schedulers of the ``scheduled`` queue match the active
        schedules (paused ones have none); how many changed. No-op without Redis."""
        if self._redis is None:
            return 0
        wanted = [(s.id, s.spec, s.company_id) for s in schedules if not s.paused]
        return await self._redis.sync_job_schedulers(TICK_QUEUE, wanted)
