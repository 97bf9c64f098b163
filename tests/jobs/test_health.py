"""The health report names each problem when it is provoked for real, and only then.

Each test makes the situation the way an operator would meet it (a worker process
that stops, a paused queue, jobs that fail, a job that waits too long, a worker that
dies without a goodbye) and reads ``JobMonitor.health``, the body of
``/api/queue/health``, ``/metrics`` and the dashboard's panel. Redis going away is in
``tests/faults/test_health_truth.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ils.clock import ManualClock
from ils.errors import PermanentJobError
from ils.jobs.health import QueueFacts, queue_problems
from ils.jobs.payloads.pdf import OrderSheetPdf
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.settings import HealthSettings, Settings
from ils.testing import eventually
from tests.conftest import delete_prefix

SystemFactory = Callable[..., Awaitable[JobSystem]]
FAST = {"backoff_delay_ms": 50, "lock_duration_ms": 2000, "stalled_interval_ms": 500}


@pytest.fixture(params=["local", "redis"])
async def make_system(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SystemFactory]:
    systems: list[JobSystem] = []
    redis_args: dict[str, Any] = {}
    if request.param == "redis":
        redis_args = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }

    async def factory(**settings: Any) -> JobSystem:
        system = await JobSystem.open(
            Settings(
                data_dir=tmp_path,
                queues={"pdf": {**FAST, "attempts": 1}},
                local_poll_interval_ms=20,
                worker_heartbeat_s=0.2,
                **redis_args,
                **settings,
            )
        )
        systems.append(system)
        return system

    yield factory
    for system in systems:
        await system.close()
    if redis_args:
        await delete_prefix(redis_args["redis_url"], redis_args["redis_prefix"])


def codes(health: dict[str, Any], queue: str | None = None) -> list[str]:
    return [p["code"] for p in health["problems"] if queue is None or p["queue"] == queue]


async def test_waiting_jobs_without_a_worker_are_a_problem_until_one_starts_and_after_it_stops(
    make_system: SystemFactory,
) -> None:
    system = await make_system()
    await system.helpers.queue_order_sheet_pdf("order-1")
    health = await system.monitor.health()
    assert health["status"] == "degraded"
    assert codes(health, "pdf") == ["queue_without_worker"]
    problem = health["problems"][0]
    assert problem["severity"] == "critical"
    assert "1 waiting job(s) and no live worker" in problem["message"]

    started = asyncio.Event()
    release = asyncio.Event()

    async def draw(payload: OrderSheetPdf, ctx: Any) -> None:
        started.set()
        await release.wait()

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderSheetPdf, draw)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_workers(system, ["pdf"], registry, stop=stop))
    try:
        await eventually(lambda: started.is_set(), 10)
        await system.helpers.queue_order_sheet_pdf("order-2")  # waits: one slot busy
        await eventually(lambda: _without(system, "queue_without_worker"), 10)
    finally:
        release.set()
        stop.set()
        await worker
    await system.helpers.queue_order_sheet_pdf("order-3")
    # The worker stopped cleanly: at once, not after its heartbeats run out.
    health = await system.monitor.health()
    assert codes(health, "pdf") == ["queue_without_worker"]
    assert "worker_heartbeat_stopped" not in codes(health)


async def _without(system: JobSystem, code: str) -> bool:
    return code not in codes(await system.monitor.health())


async def test_a_paused_queue_is_a_problem_and_says_so_instead_of_no_worker(
    make_system: SystemFactory,
) -> None:
    system = await make_system()
    await system.helpers.queue_order_sheet_pdf("order-1")
    await system.admin.pause("pdf")
    health = await system.monitor.health()
    assert health["queues"]["pdf"]["paused"] is True
    assert health["queues"]["email"]["paused"] is False
    assert codes(health, "pdf") == ["queue_paused"]
    assert "1 job(s) wait" in health["problems"][0]["message"]
    await system.admin.resume("pdf")
    health = await system.monitor.health()
    assert health["queues"]["pdf"]["paused"] is False
    assert codes(health, "pdf") == ["queue_without_worker"]


async def test_a_failure_rate_above_the_threshold_is_a_problem(
    make_system: SystemFactory,
) -> None:
    system = await make_system(health={"failure_rate": 0.5, "failure_min_jobs": 5})

    async def draw(payload: OrderSheetPdf, ctx: Any) -> None:
        if payload.order_id.startswith("bad"):
            raise PermanentJobError("the order has no lens data")

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderSheetPdf, draw)
    runner = Runner(system.stores(), [system.catalogue["pdf"]], registry)
    runner.start()
    try:
        for n in range(4):
            await system.helpers.queue_order_sheet_pdf(f"good-{n}")
        for n in range(4):
            await system.helpers.queue_order_sheet_pdf(f"bad-{n}")
        await eventually(lambda: _finished(system, 8), 20)
        # 4 of 8 failed: 50 %, not above the threshold, and under five failures.
        assert "queue_failure_rate" not in codes(await system.monitor.health())
        for n in range(4, 8):
            await system.helpers.queue_order_sheet_pdf(f"bad-{n}")
        await eventually(lambda: _finished(system, 12), 20)
    finally:
        await runner.stop(5)
    health = await system.monitor.health()
    assert codes(health, "pdf") == ["queue_failure_rate"]
    assert (
        "8 of 12 jobs finished in the last 15 min failed (67 %" in health["problems"][0]["message"]
    )


async def _finished(system: JobSystem, count: int) -> bool:
    counts = await system.monitor.counts("pdf")
    return counts["completed"] + counts["failed"] >= count


async def test_a_job_waiting_longer_than_its_queue_allows_is_a_problem(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = Settings(data_dir=tmp_path, queues={"pdf": {"max_wait_s": 60}})
    system = await JobSystem.open(settings, clock=clock)
    try:
        await system.helpers.queue_order_sheet_pdf("order-1")
        now = clock.now_ms()
        await system.local.record_worker("w-1", "host-1", 1, ["pdf"], now)  # a live worker
        assert (await system.monitor.health())["status"] == "ok"
        clock.advance(61_000)
        await system.local.record_worker("w-1", "host-1", 1, ["pdf"], now)
        health = await system.monitor.health()
        assert codes(health) == ["queue_falling_behind"]
        assert "waited 61 s, longer than its limit of 60 s" in health["problems"][0]["message"]
    finally:
        await system.close()


async def test_a_worker_whose_heartbeat_stopped_is_named(tmp_path: Path) -> None:
    clock = ManualClock()
    system = await JobSystem.open(Settings(data_dir=tmp_path, worker_heartbeat_s=10), clock=clock)
    try:
        started = clock.now_ms()
        await system.local.record_worker("w-dead", "host-9", 99, ["email"], started)
        assert (await system.monitor.health())["status"] == "ok"
        clock.advance(31_000)  # three heartbeats missed, no clean stop
        health = await system.monitor.health()
        assert codes(health) == ["worker_heartbeat_stopped"]
        assert (
            "Worker w-dead stopped sending heartbeats 31 s ago"
            in (health["problems"][0]["message"])
        )
        assert health["problems"][0]["detail"] == "It ran on host host-9."
        assert health["workers"] == []
    finally:
        await system.close()


def test_queue_rules_on_their_own() -> None:
    rules = HealthSettings(failure_rate=0.25, failure_min_jobs=10)
    quiet = QueueFacts("email", 0, False, None, 0, 0, 0, 300)
    assert queue_problems(quiet, rules) == []  # nothing waits: no worker is needed
    # Ten failures of forty finished are 25 %: at the threshold, not above it.
    at_threshold = QueueFacts("email", 0, False, None, 1, 30, 10, 300)
    assert queue_problems(at_threshold, rules) == []
    above = QueueFacts("email", 0, False, None, 1, 29, 11, 300)
    assert [p.code for p in queue_problems(above, rules)] == ["queue_failure_rate"]
    # A paused queue's waiting jobs are not "behind": the operator stopped them.
    paused = QueueFacts("email", 3, True, 900.0, 0, 0, 0, 300)
    assert [p.code for p in queue_problems(paused, rules)] == ["queue_paused"]
