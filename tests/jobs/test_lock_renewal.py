"""A lock renewal racing the job's completion does not report the lock as lost."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from ils.jobs.consumer import QueueConsumer
from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.model import ClaimedJob
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.stores.base import JobStore
from ils.jobs.system import JobSystem
from ils.settings import Settings


class RenewalThatLosesTheRace:
    """The local store, except that a renewal answers only after the job completed,
    and then (as a real store does for a finished job) calls its lock lost."""

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.renewing = asyncio.Event()
        self.completed = asyncio.Event()
        # Set once the renewer has handled the renewal's answer (the callback runs
        # after the renewer's current step, which is where it logs).
        self.answered = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        result = await self.inner.complete(*args, **kwargs)
        self.completed.set()
        return result

    async def extend_locks(self, queue: str, jobs: list[ClaimedJob]) -> list[str]:
        self.renewing.set()
        await self.completed.wait()
        asyncio.get_running_loop().call_soon(self.answered.set)
        return [job.id for job in jobs]


async def test_renewal_racing_completion_logs_no_lost_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, queues={"email": {"lock_duration_ms": 200}}
    )
    system = await JobSystem.open(settings)
    try:
        store = RenewalThatLosesTheRace(system.local)

        async def handler(payload: Any, ctx: JobContext) -> None:
            await store.renewing.wait()  # finish while the renewal is in flight

        registry = HandlerRegistry(system.job_types)
        registry.register(OrderConfirmationEmail, handler)
        await system.helpers.queue_order_confirmation_email("o1", "u1")
        consumer = QueueConsumer(
            store,  # type: ignore[arg-type]
            system.catalogue["email"],
            registry,
            "w1",
        )
        with caplog.at_level(logging.WARNING, logger="ils.jobs.consumer"):
            consumer.start()
            await asyncio.wait_for(store.answered.wait(), 10)
            await consumer.stop(5)
        assert "lock lost" not in caplog.text
    finally:
        await system.close()
