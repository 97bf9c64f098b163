"""Jobs start in the gaps between the requests of their process (``ils.jobs.foreground``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ils.jobs.foreground import Foreground
from ils.jobs.model import JobState
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually

#: Long enough that no test below can pass by its wait timing out.
NEVER_S = 60.0
#: Loop passes a test lets go by to show that something did not happen.
PASSES = 20


async def passes(count: int = PASSES) -> None:
    """Let ``count`` passes of the event loop go by."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_with_no_request_in_flight_a_job_starts_at_once() -> None:
    foreground = Foreground(max_wait_s=NEVER_S)
    async with asyncio.timeout(1):
        await foreground.gap()
    foreground.begin()
    foreground.end()
    async with asyncio.timeout(1):
        await foreground.gap()


async def test_a_job_waits_for_the_last_request_in_flight() -> None:
    foreground = Foreground(max_wait_s=NEVER_S)
    foreground.begin()
    foreground.begin()
    waiting = asyncio.create_task(foreground.gap())
    await passes()
    assert not waiting.done()
    foreground.end()
    await passes()
    assert not waiting.done()
    assert foreground.waiting == 1
    foreground.end()
    async with asyncio.timeout(1):
        await waiting
    assert foreground.waiting == 0


async def test_a_server_never_idle_still_starts_its_jobs_after_the_bound() -> None:
    foreground = Foreground(max_wait_s=0.05)
    foreground.begin()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5):
        await foreground.gap()
    assert loop.time() - started >= 0.05
    assert foreground.waiting == 0
    assert foreground.in_flight == 1


async def test_a_gap_starts_one_job_and_a_request_arriving_meanwhile_goes_first() -> None:
    """The oldest waiter starts; the next only once that one has given the loop back
    and no request has come in between."""
    foreground = Foreground(max_wait_s=NEVER_S)
    foreground.begin()
    started: list[int] = []

    async def job(number: int) -> None:
        await foreground.gap()
        started.append(number)
        if number == 0:
            foreground.begin()  # a request arrives during the first job's first step

    jobs = [asyncio.create_task(job(number)) for number in range(3)]
    await passes()
    assert foreground.waiting == 3
    foreground.end()
    await passes()
    assert started == [0]
    assert foreground.waiting == 2
    foreground.end()
    async with asyncio.timeout(1):
        await asyncio.gather(*jobs)
    assert started == [0, 1, 2]


async def test_a_cancelled_wait_leaves_the_queue_and_the_gap_goes_to_the_next() -> None:
    foreground = Foreground(max_wait_s=NEVER_S)
    foreground.begin()
    first = asyncio.create_task(foreground.gap())
    second = asyncio.create_task(foreground.gap())
    await passes()
    first.cancel()
    await passes()
    assert foreground.waiting == 1
    foreground.end()
    async with asyncio.timeout(1):
        await second
    assert first.cancelled()


async def test_the_runner_starts_a_handler_only_in_a_gap(tmp_path: Path) -> None:
    """Wired through the runner: the job is claimed, its handler waits for the request."""
    system = await JobSystem.open(Settings(data_dir=tmp_path, local_poll_interval_ms=20))
    foreground = Foreground(max_wait_s=NEVER_S)
    registry = HandlerRegistry(system.job_types)
    handled: list[str] = []

    async def handler(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        handled.append(payload.order_id)

    registry.register(OrderConfirmationEmail, handler)
    runner = Runner(system.stores(), [system.catalogue["email"]], registry, foreground=foreground)
    foreground.begin()
    runner.start()
    try:
        ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")

        async def state() -> JobState | None:
            record = await system.local.get_job("email", ref.job_id)
            return None if record is None else record.state

        async def claimed() -> bool:
            return await state() is JobState.ACTIVE and foreground.waiting == 1

        await eventually(claimed, 10.0, interval=0.02, message="job not claimed")
        await passes()
        assert handled == []
        foreground.end()

        async def completed() -> bool:
            return await state() is JobState.COMPLETED

        await eventually(completed, 10.0, interval=0.02, message="job not run after the gap")
        assert handled == ["ord-1"]
    finally:
        await runner.stop(5)
        await system.close()
