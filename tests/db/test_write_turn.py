"""The process's SQLite write turn: requests before background writers, in order within
each, no writer starved, none lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

from ils.db.transactions import WriteTurn


async def _queued(turn: WriteTurn, order: list[str], name: str, *, urgent: bool) -> None:
    async with turn(urgent=urgent):
        order.append(name)


async def _all_waiting(tasks: list[asyncio.Task[None]]) -> None:
    """Let every task run up to its wait for the turn (they queue in creation order)."""
    for _ in range(len(tasks) + 2):
        await asyncio.sleep(0)


class _Holder:
    """A task holding the turn until released (tasks started inside a holder's context
    would inherit its turn, so the holder runs apart)."""

    def __init__(self, turn: WriteTurn) -> None:
        self._release = asyncio.Event()
        self._holding = asyncio.Event()
        self._task = asyncio.create_task(self._hold(turn))

    async def _hold(self, turn: WriteTurn) -> None:
        async with turn():
            self._holding.set()
            await self._release.wait()

    async def __aenter__(self) -> None:
        await self._holding.wait()

    async def __aexit__(self, *_: object) -> None:
        self._release.set()
        await self._task


async def _run_queue(turn: WriteTurn, writers: list[tuple[str, bool]]) -> list[str]:
    """Hold the turn while ``writers`` (name, urgent) queue up in that order, release
    it, and return the order in which they got it."""
    order: list[str] = []
    async with _Holder(turn):
        tasks = [
            asyncio.create_task(_queued(turn, order, name, urgent=urgent))
            for name, urgent in writers
        ]
        await _all_waiting(tasks)
        assert order == []
    await asyncio.gather(*tasks)
    return order


async def test_a_waiting_request_goes_before_waiting_background_writers() -> None:
    order = await _run_queue(
        WriteTurn(), [("claim", False), ("complete", False), ("order", True), ("log", False)]
    )
    assert order == ["order", "claim", "complete", "log"]


async def test_requests_keep_their_order_among_themselves() -> None:
    order = await _run_queue(WriteTurn(), [("first", True), ("second", True), ("third", True)])
    assert order == ["first", "second", "third"]


async def test_a_stream_of_requests_lets_a_background_writer_in() -> None:
    writers = [("claim", False), *((f"r{i}", True) for i in range(5))]
    order = await _run_queue(WriteTurn(urgent_in_a_row=3), writers)
    assert order == ["r0", "r1", "r2", "claim", "r3", "r4"]


async def _cancel_at_release(*, before: bool) -> list[str]:
    """Two background writers wait; the holder cancels the first in the same step as
    it releases the turn (just ``before`` releasing, or just after, once the turn is
    handed to it). Returns who got the turn."""
    turn = WriteTurn()
    order: list[str] = []
    go = asyncio.Event()
    waiters: list[asyncio.Task[None]] = []

    async def holder() -> None:
        async with turn():
            await go.wait()
            if before:
                waiters[0].cancel()
        if not before:
            waiters[0].cancel()

    held = asyncio.create_task(holder())
    await _all_waiting([held])
    waiters += [asyncio.create_task(_queued(turn, order, name, urgent=False)) for name in "ab"]
    await _all_waiting(waiters)
    go.set()
    await asyncio.wait_for(asyncio.gather(held, waiters[1]), timeout=5)
    assert waiters[0].cancelled()
    return order


async def test_a_waiter_cancelled_while_waiting_does_not_keep_the_turn() -> None:
    assert await _cancel_at_release(before=True) == ["b"]


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    assert await _cancel_at_release(before=False) == ["b"]


async def test_the_holder_passes_straight_through_its_own_turn() -> None:
    turn = WriteTurn()
    async with turn(), turn(urgent=True), turn():
        pass
    # ... and gives the turn back once: the next writer gets it at once.
    async with turn():
        pass
