"""Requests first on a shared event loop: jobs start in the gaps between requests.

With the workers in the web process (the embedded default, ``ils serve``), a request
and a job's handler take turns on one event loop, in the order their steps became
ready. A loaded server's request then waits behind whatever jobs happen to be running:
a company notification's fan-out, a tracing file's parse. The write turn gives
requests the database first (:class:`~ils.db.transactions.WriteTurn`); this gives them
the loop first, at the one place where background work can be held back cheaply,
before a job's handler starts.

The web app counts its requests in flight (``begin`` / ``end``, from the request's
arrival until its response starts: a stream stops counting once its headers are out).
A consumer awaits :meth:`Foreground.gap` before each handler: at once when no request
is in flight, otherwise until the last one ends, at most ``max_wait_s``, so a server
that is never idle still runs its jobs, each started that much later. A gap starts
one waiting job, the oldest, and that job passes the gap on to the next once its
handler has given the loop back, if no request has come meanwhile: jobs start one a
pass of the loop, and a request that arrives between two starts goes first. Waking
every waiter at once would put the burst back in front of the next request.

A process without web requests (``ils worker``) has no ``Foreground`` and its jobs
never wait.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Final

#: Longest a job waits for a gap between requests before it starts anyway.
DEFAULT_MAX_WAIT_S: Final = 0.05


class Foreground:
    """Requests in flight in one process, and the jobs waiting for a gap in them."""

    def __init__(self, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        self.max_wait_s = max_wait_s
        self._in_flight = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def in_flight(self) -> int:
        """Requests this process is answering now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Jobs waiting for a gap now."""
        return len(self._waiting)

    def begin(self) -> None:
        """A request arrived."""
        self._in_flight += 1

    def end(self) -> None:
        """A request has answered (or its stream has started): at the last one, the
        oldest waiting job starts."""
        self._in_flight -= 1
        if self._in_flight == 0:
            self._start_one()

    def _start_one(self) -> None:
        while self._waiting:
            gap = self._waiting.popleft()
            if not gap.done():  # done: its wait timed out or was cancelled meanwhile
                gap.set_result(None)
                return

    async def gap(self) -> None:
        """Return when no request is in flight, or after ``max_wait_s``."""
        if self._in_flight == 0 and not self._waiting:
            return
        gap: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(gap)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.max_wait_s):
                    await gap
        finally:
            if not gap.done():
                gap.cancel()
            with contextlib.suppress(ValueError):
                self._waiting.remove(gap)
            if not gap.cancelled():
                # Started by a gap (even one that came as the wait timed out): the next
                # waiter's turn comes after this job's first step.
                asyncio.get_running_loop().call_soon(self._pass_on)

    def _pass_on(self) -> None:
        if self._in_flight == 0:
            self._start_one()
