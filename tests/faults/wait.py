"""Waiting on conditions instead of sleeping a fixed time.

* ``await eventually(check, timeout=5.0)``: poll ``check`` (a function returning
  ``bool``, or an ``async`` one) until it is true; fail with ``AssertionError``
  after ``timeout`` seconds.
* ``await still(check, for_s=0.3)``: the opposite for things that must *not* happen:
  fail as soon as ``check`` is true, pass when it stayed false for ``for_s``.
  Proving that something does not happen needs some window; keep it short.
* ``wait_until(check, timeout=5.0)``: ``eventually`` for synchronous code.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["Check", "eventually", "still", "wait_until"]

Check = Callable[[], bool] | Callable[[], Awaitable[bool]]


async def _holds(check: Check) -> bool:
    result = check()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


async def eventually(
    check: Check, timeout: float = 5.0, interval: float = 0.01, message: str = ""
) -> None:
    """Poll ``check`` until it holds; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await _holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met in {timeout} s")
        await asyncio.sleep(interval)


async def still(
    check: Check, for_s: float = 0.3, interval: float = 0.01, message: str = ""
) -> None:
    """Poll ``check`` for ``for_s`` seconds; ``AssertionError`` as soon as it holds."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        if await _holds(check):
            raise AssertionError(message or "condition became true")
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01, message: str = ""
) -> None:
    """Synchronous ``eventually``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met in {timeout} s")
        time.sleep(interval)
