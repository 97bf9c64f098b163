"""A cancel that arrives together with what a timed wait was waiting for is not lost.

On Python 3.11, ``asyncio.wait_for`` returns the inner result when the outer task is
cancelled in the same turn of the loop as the inner wait completes: the cancel is
swallowed, and a loop around the wait (a live stream's reader, a worker waiting for
work) goes on as if nobody had asked it to stop, until a shutdown grace runs out.
These tests make exactly that turn happen: the thing waited for completes, and the
waiting task is cancelled before it runs again.
"""

from __future__ import annotations

import asyncio

from ils.jobs.events import Subscription
from ils.jobs.stores.waiting import wait_until_ready


async def _waiting(task: asyncio.Task[None]) -> None:
    """Until ``task`` is parked in its wait (a few turns of the loop)."""
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()


async def test_a_subscription_reader_cancelled_as_a_message_arrives_stops() -> None:
    subscription = Subscription("notifications")
    read: list[str | None] = []

    async def reader() -> None:
        while True:
            read.append(await subscription.get(timeout_s=30))

    task = asyncio.create_task(reader())
    await _waiting(task)
    subscription.deliver("one")
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done, "the reader lost its cancel and went on waiting"
    assert task.cancelled()


async def test_a_wait_for_work_cancelled_as_the_wakeup_comes_stops() -> None:
    event = asyncio.Event()

    async def not_ready() -> float | None:
        return None

    async def worker() -> None:
        while True:
            await wait_until_ready(lambda: event, not_ready, lambda: False, 30, 60_000)
            event.clear()

    task = asyncio.create_task(worker())
    await _waiting(task)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done, "the wait lost its cancel and went on waiting"
    assert task.cancelled()
