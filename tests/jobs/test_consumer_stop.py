"""A consumer told to stop stops soon, even when a cancel is lost on the way.

redis-py sends a new connection's first command under ``asyncio.wait_for``; on Python
3.11 that returns the command's reply instead of raising when the cancel arrives as the
reply does. Seen as a worker stopped just after it started (``ils worker``, and
``test_the_start_up_lines_say_how_jobs_are_stored[redis]`` in CI): the stalled-job
sweeper went on and ``stop`` waited out the whole shutdown grace, 30 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ils.jobs.consumer import QueueConsumer
from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.stores.base import JobStore
from ils.jobs.system import JobSystem
from ils.settings import Settings


class SweepThatLosesACancel:
    """The local store, except that a stalled-job check answers only when released
    and, the first time it is cancelled meanwhile, answers anyway, as
    ``asyncio.wait_for`` does on 3.11 when the reply arrives with the cancel."""

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.sweeping = asyncio.Event()
        self.released = asyncio.Event()
        self.lost_cancels = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def recover_stalled(self, queue: str) -> list[str]:
        self.sweeping.set()
        try:
            await self.released.wait()
        except asyncio.CancelledError:
            if self.lost_cancels:
                raise  # a later cancel, at another moment, gets through
            self.lost_cancels += 1
        return []


async def test_a_stop_ends_a_sweeper_that_lost_its_cancel(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, queues={"email": {"stalled_interval_ms": 100}}
    )
    system = await JobSystem.open(settings)
    try:
        store = SweepThatLosesACancel(system.local)
        registry = HandlerRegistry(system.job_types)

        async def handler(payload: Any, ctx: JobContext) -> None:
            return None

        registry.register(OrderConfirmationEmail, handler)
        consumer = QueueConsumer(
            store,  # type: ignore[arg-type]
            system.catalogue["email"],
            registry,
            "w1",
        )
        consumer.start()
        await asyncio.wait_for(store.sweeping.wait(), 10)
        # The grace is 30 s; the stop must not wait it out for the sweeper.
        await asyncio.wait_for(consumer.stop(30), 5)
        assert store.lost_cancels >= 1, "the sweeper was cancelled in its check"
    finally:
        await system.close()
