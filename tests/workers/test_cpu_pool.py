"""The CPU pool: calls run in other processes, and a dead or stuck process is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from ils.workers.cpu import CpuPool, CpuPoolError


def _pid_and_niceness(value: int) -> tuple[int, int, int]:
    return os.getpid(), os.nice(0), value * 2


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A terminated child not yet reaped is a zombie: gone for our purpose. The
    # process may also vanish between the two checks (ESRCH on read).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_call_runs_in_a_lower_priority_process() -> None:
    pool = CpuPool(1, nice=5)
    assert not pool.started  # nothing before the first call
    try:
        pid, niceness, doubled = await pool.run(_pid_and_niceness, 21)
        assert pool.started
        assert doubled == 42
        assert pid != os.getpid()
        assert niceness >= os.nice(0) + 5
    finally:
        pool.close()
    assert not pool.started


async def test_a_dead_process_fails_the_call_and_the_next_call_gets_a_new_pool() -> None:
    pool = CpuPool(1, what="forecasting")
    try:
        with pytest.raises(CpuPoolError, match="died during forecasting"):
            await pool.run(_die)
        _, _, doubled = await pool.run(_pid_and_niceness, 2)
        assert doubled == 4
    finally:
        pool.close()


async def test_a_call_over_the_timeout_fails_and_the_pool_is_replaced() -> None:
    pool = CpuPool(1, timeout_s=3, what="rendering")
    try:
        first_pid, _, _ = await pool.run(_pid_and_niceness, 0)  # started: spawning is slow
        with pytest.raises(CpuPoolError, match="rendering took more than 3s"):
            await pool.run(_sleep, 60.0)
        assert not pool.started
        # The stuck process was stopped, not left sleeping.
        deadline = time.monotonic() + 5
        while _alive(first_pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(first_pid)
        _, _, doubled = await pool.run(_pid_and_niceness, 3)
        assert doubled == 6
    finally:
        pool.close()
