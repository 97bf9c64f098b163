"""The wait of ``wait_for_work`` for stores that learn of new jobs by waking and polling
(the local and the in-memory store): one loop and one set of wake-ups, so both end a
wait the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until_ready(
    wakeup: Callable[[], asyncio.Event],
    ready_in_s: Callable[[], Awaitable[float | None]],
    closed: Callable[[], bool],
    poll_s: float,
    timeout_ms: int,
) -> None:
    """Return when a job may be claimable, when the store closes, or after ``timeout_ms``.

    ``wakeup()`` is the event the store sets when it adds, retries, promotes or resumes
    a job; ``ready_in_s()`` says how long until the next job comes due (0: one is
    claimable now, ``None``: none is pending). Between wake-ups the store is polled
    every ``poll_s`` (what other processes add is seen that way), and a delayed job
    coming due ends the wait at its due time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout_ms, 0) / 1000
    while not closed():
        event = wakeup()
        ready_in = await ready_in_s()
        remaining = deadline - loop.time()
        if ready_in == 0 or remaining <= 0:
            return
        nap = min(poll_s, remaining, remaining if ready_in is None else ready_in)
        # asyncio.timeout, not wait_for, which on Python 3.11 loses a cancel that comes
        # with the wake-up (tests/jobs/test_lost_cancel.py).
        try:
            async with asyncio.timeout(nap):
                await event.wait()
            return
        except TimeoutError:
            continue


class Wakeups:
    """One ``asyncio.Event`` per queue that the next :meth:`notify` sets: how a store
    that adds, retries, promotes or resumes a job ends the waits on that queue."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def wakeup(self, queue: str) -> asyncio.Event:
        """The event the next ``notify(queue)`` sets."""
        return self._events.setdefault(queue, asyncio.Event())

    def waiting(self, queue: str) -> asyncio.Event | None:
        """The event waiters on ``queue`` hold now, if any (tests park on it)."""
        return self._events.get(queue)

    def notify(self, queue: str) -> None:
        """Wake every ``wait_for_work`` caller on ``queue``."""
        event = self._events.pop(queue, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Wake every waiter (the store closes)."""
        for queue in list(self._events):
            self.notify(queue)
