"""Redis mode with jobs in both stores (after an outage): one concurrency per process,
and the default stall allowance survives two crashes of a job's worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ils.clock import ManualClock
from ils.jobs.attempt import JobOutcome
from ils.jobs.model import JobOptions, JobState, NewJob
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import delete_prefix


def _job(i: int) -> NewJob:
    data = OrderConfirmationEmail(order_id=f"o{i}", user_id="u").model_dump(
        mode="json", by_alias=True
    )
    return NewJob("order-confirmation", data, JobOptions(job_id=f"both-{i}"))


async def test_one_concurrency_over_both_stores(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """Jobs waiting in Redis and in the local store: a process still runs at most the
    queue's concurrency at once (each store's consumer used to run its own 3)."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        queues={"email": {"concurrency": 3, "rate_limit_max": 0}},
    )
    system = await JobSystem.open(settings)
    try:
        assert system.redis is not None
        for i in range(6):
            await system.redis.add("email", _job(i))
            await system.local.add("email", _job(100 + i))
        running = 0
        peak = 0
        stores: set[str] = set()

        async def handler(payload: Any, ctx: JobContext) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            stores.add(getattr(ctx, "store", "?"))
            await asyncio.sleep(0.1)  # the work
            running -= 1

        registry = HandlerRegistry(system.job_types)
        registry.register(OrderConfirmationEmail, handler)
        done = asyncio.Event()
        outcomes: list[JobOutcome] = []

        def listen(outcome: JobOutcome) -> None:
            outcomes.append(outcome)
            if len(outcomes) == 12:
                done.set()

        runner = Runner(
            system.stores(),
            [system.catalogue["email"]],
            registry,
            listeners=[listen],
            gates=system.gates(),
        )
        runner.start()
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            await runner.stop(5)
        assert stores == {"redis", "local"}
        assert peak == 3
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)


async def test_default_stall_allowance_survives_two_worker_crashes(tmp_path: Path) -> None:
    clock = ManualClock()
    system = await JobSystem.open(Settings(_env_file=None, data_dir=tmp_path), clock=clock)
    try:
        assert system.settings.max_stalled_count == 2
        store = system.local
        await store.add("email", _job(1))
        lock_ms = system.catalogue["email"].lock_duration_ms
        for crash in range(3):
            fetched = await store.fetch("email", f"dead-worker-{crash}")
            assert fetched.job is not None  # claimed, then its worker dies
            clock.advance(lock_ms + 1)
            assert await store.recover_stalled("email") == ["both-1"]
            record = await store.get_job("email", "both-1")
            assert record is not None
            expected = JobState.FAILED if crash == 2 else JobState.WAITING
            assert record.state is expected, (crash, record.state)
    finally:
        await system.close()
