"""``Runner.stop`` returns within its grace whatever the store or a job does.

A worker told to stop (SIGTERM from a deploy, a test's teardown) must exit: a fetch
that never comes back (a store that stopped answering mid-command) or a job that
swallows its cancellation used to hold ``stop`` for ever. Either is abandoned after
the grace; the job's lock then expires and another worker picks it up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ils.jobs.model import Fetch
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually

#: Far beyond any grace below: ``stop`` not back by then is the bug.
STOP_BOUND_S = 10.0


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[JobSystem]:
    opened = await JobSystem.open(Settings(data_dir=tmp_path, local_poll_interval_ms=20))
    yield opened
    await opened.close()


async def test_a_fetch_that_never_returns_does_not_hold_stop(
    system: JobSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_fetch = asyncio.Event()

    async def never_returns(queue: str, token: str) -> Fetch:
        in_fetch.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(system.local, "fetch", never_returns)
    runner = Runner([system.local], [system.catalogue["email"]], HandlerRegistry(system.job_types))
    runner.start()
    await asyncio.wait_for(in_fetch.wait(), STOP_BOUND_S)

    assert await stops_within_bound(runner, 0.2)


async def test_a_job_that_ignores_cancellation_does_not_hold_stop(
    system: JobSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    started = asyncio.Event()
    released = asyncio.Event()
    cancels: list[int] = []

    async def stubborn(payload: Any, ctx: JobContext) -> None:
        started.set()
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                cancels.append(1)

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderConfirmationEmail, stubborn)
    await system.helpers.queue_order_confirmation_email("o1", "u")
    runner = Runner([system.local], [system.catalogue["email"]], registry)
    runner.start()
    await asyncio.wait_for(started.wait(), STOP_BOUND_S)
    try:
        assert await stops_within_bound(runner, 0.1)
        assert cancels, "the job was never asked to stop"
        assert any("ignored" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        released.set()
        await eventually(lambda: not runner.running(), timeout=STOP_BOUND_S)


async def stops_within_bound(runner: Runner, grace_s: float) -> bool:
    """Whether ``runner.stop(grace_s)`` returned within :data:`STOP_BOUND_S`. Not
    ``wait_for``: cancelling a ``stop`` stuck on a job that ignores cancellation would
    hang the test instead of failing it."""
    stopping = asyncio.create_task(runner.stop(grace_s))
    done, _ = await asyncio.wait({stopping}, timeout=STOP_BOUND_S)
    return stopping in done
