"""Fault injection for the event loop: another task holding it, as on a busy machine."""

from __future__ import annotations

import asyncio
import time


def hold_the_loop_soon(seconds: float) -> None:
    """On the loop's next turn, keep it busy for ``seconds`` (another task's CPU work):
    timers that fall due meanwhile fire in the same turn as the I/O that finished."""

    def busy() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    asyncio.get_running_loop().call_later(0, busy)
