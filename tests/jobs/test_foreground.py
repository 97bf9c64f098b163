"""Requests before jobs on the one event loop of ``ils serve`` with workers (issue 21).

``bench/orders.py`` showed the paced p99 of ``POST /api/orders`` at 216 ms with the
workers in the server process against 43 ms without them: requests queued for the
write turn behind the workers' bookkeeping writes, and for the loop behind jobs that
kept starting. These tests pin the two rules that brought it back under 50 ms: a
request's write goes before background writes queued earlier (and background writes
still move under a flood of requests), and a worker slot of the web process starts a
job only when no request is being answered, or after a bounded wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from ils.db.transactions import REQUESTS_FIRST, WriteTurn
from ils.jobs.foreground import Foreground
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually, still
from ils.web.foreground import ForegroundMiddleware


async def _take(turn: Any, name: str, order: list[str], release: asyncio.Event) -> None:
    async with turn():
        order.append(name)
        await release.wait()


async def _queue_behind_holder(
    writers: list[tuple[str, Any]],
) -> tuple[list[str], list[asyncio.Task[None]], asyncio.Event]:
    """Start a holder, then ``writers`` in order, each waiting for the turn."""
    turn = WriteTurn()
    order: list[str] = []
    release = asyncio.Event()
    holder = asyncio.create_task(_take(turn, "holder", order, release))
    await eventually(lambda: order == ["holder"], 2)
    tasks = [holder]
    for name, line in writers:
        tasks.append(asyncio.create_task(_take(getattr(turn, line), name, order, release)))
        await asyncio.sleep(0)  # queued in this order
    return order, tasks, release


async def test_a_request_goes_before_background_writes_queued_earlier() -> None:
    writers = [("job-1", "background"), ("job-2", "background"), ("request", "__call__")]
    order, tasks, release = await _queue_behind_holder(writers)
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["holder", "request", "job-1", "job-2"]


async def test_background_writes_still_move_under_a_flood_of_requests() -> None:
    """Requests always waiting must not starve the jobs: one background write gets in
    after every ``REQUESTS_FIRST`` requests."""
    requests = [(f"request-{i}", "__call__") for i in range(2 * REQUESTS_FIRST + 2)]
    writers = [("job-1", "background"), ("job-2", "background"), *requests]
    order, tasks, release = await _queue_behind_holder(writers)
    release.set()
    await asyncio.gather(*tasks)
    after = order[1:]
    assert after.index("job-1") == REQUESTS_FIRST
    assert after.index("job-2") == 2 * REQUESTS_FIRST + 1


async def test_a_cancelled_waiter_does_not_keep_the_turn() -> None:
    turn = WriteTurn()
    order: list[str] = []
    release = asyncio.Event()
    holder = asyncio.create_task(_take(turn, "holder", order, release))
    await eventually(lambda: order == ["holder"], 2)
    gone = asyncio.create_task(_take(turn.background, "gone", order, release))
    later = asyncio.create_task(_take(turn, "later", order, release))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(holder, later)
    assert order == ["holder", "later"]
    async with turn.background():  # free again
        pass


async def test_the_turn_is_re_entrant_in_a_task() -> None:
    turn = WriteTurn()
    async with turn(), turn.background(), turn():
        pass


async def test_a_task_created_in_the_turn_waits_for_it() -> None:
    """Re-entrant for the holding task only: a task it creates (and whose context it
    copies) must not write beside it."""
    turn = WriteTurn()
    order: list[str] = []
    released = asyncio.Event()
    released.set()
    async with turn():
        child = asyncio.create_task(_take(turn.background, "child", order, released))
        await still(lambda: bool(order), 0.1, message="the child wrote inside the turn")
        order.append("holder")
    await asyncio.wait_for(child, 5)
    assert order == ["holder", "child"]


async def test_quiet_waits_for_the_requests_but_not_longer_than_its_bound() -> None:
    foreground = Foreground(max_wait_s=30)
    await asyncio.wait_for(foreground.quiet(), 1)  # nothing answered: at once
    foreground.enter()
    waiting = asyncio.create_task(foreground.quiet())
    await still(waiting.done, 0.2, message="quiet() returned while a request was answered")
    foreground.leave()
    await asyncio.wait_for(waiting, 1)
    bounded = Foreground(max_wait_s=0.05)
    bounded.enter()
    await asyncio.wait_for(bounded.quiet(), 5)  # still busy, but the bound is up


async def test_the_middleware_counts_a_request_until_its_response_starts() -> None:
    """A long stream counts only until its headers are sent, or the workers of a
    server with open notification streams would always wait their full bound."""
    foreground = Foreground(max_wait_s=1)
    app = FastAPI()
    answering = asyncio.Event()
    answer = asyncio.Event()
    streaming = asyncio.Event()
    end_stream = asyncio.Event()
    seen: dict[str, int] = {}

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        answering.set()
        await answer.wait()
        return {"ok": "yes"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> Any:
            yield b"first\n"
            streaming.set()
            await end_stream.wait()
            seen["busy during the stream"] = foreground.busy

        return StreamingResponse(body())

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("no response at all")

    app.add_middleware(ForegroundMiddleware, foreground=foreground)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        pending = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(answering.wait(), 5)
        assert foreground.busy == 1
        answer.set()
        assert (await pending).status_code == 200
        assert foreground.busy == 0
        streamed = asyncio.create_task(client.get("/stream"))
        await asyncio.wait_for(streaming.wait(), 5)
        end_stream.set()
        await streamed
        assert seen["busy during the stream"] == 0
        assert (await client.get("/broken")).status_code == 500
        assert foreground.busy == 0


async def test_a_worker_of_the_web_process_starts_a_job_only_between_requests(
    tmp_path: Path,
) -> None:
    system = await JobSystem.open(Settings(data_dir=tmp_path, local_poll_interval_ms=20))
    foreground = Foreground(max_wait_s=60)
    started: list[str] = []

    async def handler(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        started.append(payload.order_id)

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderConfirmationEmail, handler)
    runner = Runner(
        system.stores(), [system.catalogue["email"]], registry, yield_to=foreground.quiet
    )
    try:
        foreground.enter()  # a request is being answered
        runner.start()
        await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")
        await still(lambda: bool(started), 0.5, message="a job started during a request")
        foreground.leave()
        await eventually(lambda: started == ["ord-1"], 5)
    finally:
        await runner.stop(5)
        await system.close()
