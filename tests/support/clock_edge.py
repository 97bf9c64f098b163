"""Waiting for the wall clock's next millisecond, for tests of time-ordered ids."""

from __future__ import annotations

import time


def next_millisecond() -> int:
    """Spin (on the clock, not a sleep: the wait is under a millisecond) until the
    system clock's millisecond changes; return the new one."""
    start = time.time_ns() // 1_000_000
    while (now := time.time_ns() // 1_000_000) == start:
        pass
    return now
