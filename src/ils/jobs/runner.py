"""All consumers of one worker process (:class:`Runner`), sharing what is per queue.

A queue's jobs may sit in two stores (Redis, and the local store during and after an
outage): its consumers then share one concurrency semaphore, and on a rate-limited
queue one rate window (the local store's), so the process keeps the queue's limits
over both stores. The fetch loop itself is ``consumer.QueueConsumer``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ils.jobs.attempt import JobListener, RunningJob
from ils.jobs.catalogue import QueueConfig
from ils.jobs.consumer import QueueConsumer, RateTokens
from ils.jobs.gate import RedisGate
from ils.jobs.registry import HandlerRegistry
from ils.jobs.stores.base import JobStore


@runtime_checkable
class RateTokensStore(RateTokens, Protocol):
    """A store that keeps the shared rate window (the local store)."""

    kind: str


class Runner:
    """All consumers of one process: one per (store, queue)."""

    def __init__(
        self,
        stores: Sequence[JobStore],
        queues: Sequence[QueueConfig],
        registry: HandlerRegistry,
        *,
        listeners: Sequence[JobListener] = (),
        gates: Mapping[str, RedisGate | None] | None = None,
    ) -> None:
        self.worker_id = uuid.uuid4().hex[:12]
        gates = gates or {}
        slots = {config.key: asyncio.Semaphore(config.concurrency) for config in queues}
        # With two stores (Redis mode) the local store's rate window is the queue's one
        # window: Redis consumers count their starts there too.
        local = next((s for s in stores if s.kind == "local"), None)
        shared_window = local if len(stores) > 1 and isinstance(local, RateTokensStore) else None
        self.consumers = [
            QueueConsumer(
                store,
                config,
                registry,
                self.worker_id,
                listeners,
                gate=gates.get(store.kind),
                slots=slots[config.key],
                shares_slots=len(stores) > 1,
                rate_tokens=(
                    shared_window if store is not local and config.rate_limit is not None else None
                ),
            )
            for store in stores
            for config in queues
        ]
        self._started = False

    def start(self) -> None:
        """Start every consumer (idempotent)."""
        if self._started:
            return
        self._started = True
        for consumer in self.consumers:
            consumer.start()

    async def stop(self, grace_s: float) -> None:
        """Stop claiming everywhere and give running jobs ``grace_s`` to finish."""
        if not self._started:
            return
        self._started = False
        await asyncio.gather(*(c.stop(grace_s) for c in self.consumers))

    @property
    def active(self) -> int:
        """Jobs running in this process now."""
        return sum(c.active for c in self.consumers)

    def running(self) -> list[RunningJob]:
        """The jobs this process runs now, oldest start first (for its heartbeat)."""
        jobs = [job for consumer in self.consumers for job in consumer.running()]
        return sorted(jobs, key=lambda job: job.started_at_ms or 0)
