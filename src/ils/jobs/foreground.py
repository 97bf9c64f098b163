"""Requests before jobs when both share one event loop (``ils serve`` with workers).

The embedded default runs the API and every worker on one event loop. asyncio has no
priorities: a request's every step queues behind the steps of all running jobs, and
each order placed sets off ten or more job transactions (claims, completions, logs,
notifications). Measured with ``bench/orders.py``, that took the paced p99 of
``POST /api/orders`` from 43 ms (no workers) to 216 ms.

:class:`Foreground` counts the requests this process is answering (a middleware
enters at the request and leaves when its response starts, so a long-lived stream
counts only until its headers are sent). A worker slot of this process starts its
next job only when no request is being answered, or after ``max_wait_s`` at most:
jobs run in the gaps between requests, and under a flood of requests they still run,
one start per slot per ``max_wait_s``. A job already running is never paused. Worker
processes (``ils worker``) have no foreground and never wait.
"""

from __future__ import annotations

import asyncio
import contextlib


class Foreground:
    """The requests this process is answering now, and a wait for a quiet moment."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def busy(self) -> int:
        """Requests being answered now."""
        return self._busy

    def enter(self) -> None:
        """A request arrived."""
        self._busy += 1
        self._quiet.clear()

    def leave(self) -> None:
        """A request's response started (or it ended without one)."""
        self._busy -= 1
        if self._busy <= 0:
            self._busy = 0
            self._quiet.set()

    async def quiet(self) -> None:
        """Return when no request is being answered, or after ``max_wait_s``."""
        if self._busy == 0 or self.max_wait_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.max_wait_s)
