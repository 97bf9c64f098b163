"""The workers view: what a worker process's heartbeat says, read back as live and
recently gone workers, on SQLite and on PostgreSQL (the table is the app database's
in both modes).

The workers here are real: ``run_workers`` (what ``ils worker`` runs) with its
heartbeat, a handler that holds a job until the test lets it go, one that completes,
one that fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ils import __version__
from ils.clock import ManualClock
from ils.db.migrations import upgrade_database
from ils.errors import PermanentJobError
from ils.jobs.job_types import OrderConfirmationEmail
from ils.jobs.model import JobOptions, JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.stores.local.worker_rows import WORKER_RETENTION_MS, WorkerDetails
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.jobs.workers_view import GoneReason, WorkersView, worker_from_row, worker_processes
from ils.settings import Settings
from ils.testing import eventually

HEARTBEAT_S = 0.05
COMPANY = "co-ada"
OTHER = "co-bob"


async def _open(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock | None = None
) -> JobSystem:
    extra: dict[str, Any] = {}
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        await upgrade_database(url)  # revision 0013 included, as production migrates
        extra["database_url"] = url
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        worker_heartbeat_s=HEARTBEAT_S,
        local_poll_interval_ms=20,
        shutdown_grace_s=2,
        **extra,
    )
    return await JobSystem.open(settings, clock=clock)


@pytest.fixture(params=["sqlite", "postgres"])
async def system(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobSystem]:
    opened = await _open(request, tmp_path)
    yield opened
    await opened.close()


class Worker:
    """``run_workers`` on the email queue: ``hold-*`` orders wait for ``release``,
    ``boom-*`` orders fail for good, the others complete."""

    def __init__(self, system: JobSystem) -> None:
        self.system = system
        self.release = asyncio.Event()
        self.stop = asyncio.Event()
        registry = HandlerRegistry(system.job_types)
        registry.register(OrderConfirmationEmail, self.handle)
        self.task = asyncio.create_task(run_workers(system, ["email"], registry, stop=self.stop))

    async def handle(self, payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        if payload.order_id.startswith("boom-"):
            raise PermanentJobError("no such order")
        if payload.order_id.startswith("hold-"):
            await self.release.wait()

    async def enqueue(self, order_id: str, company_id: str | None = COMPANY) -> str:
        model = self.system.job_types.get("email", "order-confirmation").model
        ref = await self.system.producer.enqueue(
            "email",
            "order-confirmation",
            model.model_validate({"order_id": order_id, "user_id": "usr-1"}),
            JobOptions(company_id=company_id),
        )
        return ref.job_id

    async def finish(self) -> None:
        self.release.set()
        self.stop.set()
        await self.task


async def view_of(system: JobSystem) -> WorkersView:
    return await worker_processes(system.local, system.clock.now_ms(), HEARTBEAT_S)


async def test_heartbeat_carries_the_running_job_and_the_counts(system: JobSystem) -> None:
    worker = Worker(system)
    try:
        done = await worker.enqueue("ord-1")
        failed = await worker.enqueue("boom-1")
        held = await worker.enqueue("hold-1")

        async def reported() -> bool:
            view = await view_of(system)
            return (
                len(view.live) == 1
                and [job.job_id for job in view.live[0].running] == [held]
                and view.live[0].jobs_done == 1
                and view.live[0].jobs_failed == 1
            )

        await eventually(reported, timeout=10, message=lambda: f"never reported: {held}")
        view = await view_of(system)
        assert view.recently_gone == ()
        (live,) = view.live
        assert live.live and live.gone is None
        assert (live.host, live.pid) == (socket.gethostname(), os.getpid())
        assert live.version == __version__
        assert live.queues == ("email",)
        assert live.concurrency == {"email": system.catalogue["email"].concurrency}
        (job,) = live.running
        assert (job.queue, job.name, job.store, job.company_id) == (
            "email",
            "order-confirmation",
            "local",
            COMPANY,
        )
        record = await system.local.get_job("email", held)
        assert record is not None and record.state is JobState.ACTIVE
        assert job.started_at_ms == record.processed_at_ms
        assert live.started_at_ms <= live.seen_at_ms <= system.clock.now_ms()
        for job_id, state in ((done, JobState.COMPLETED), (failed, JobState.FAILED)):
            finished = await system.local.get_job("email", job_id)
            assert finished is not None and finished.state is state
        # Once the held job completes, the next beats say so.
        worker.release.set()

        async def idle() -> bool:
            (now,) = (await view_of(system)).live
            return now.running == () and now.jobs_done == 2

        await eventually(idle, timeout=10)
    finally:
        await worker.finish()


async def test_a_worker_that_stops_is_listed_as_recently_gone(system: JobSystem) -> None:
    worker = Worker(system)
    await worker.enqueue("ord-1")
    await eventually(lambda: _done(system, 1), timeout=10)
    await worker.finish()

    view = await view_of(system)
    assert view.live == ()
    (gone,) = view.recently_gone
    assert gone.gone is GoneReason.STOPPED
    assert gone.stopped_at_ms is not None and gone.stopped_at_ms <= system.clock.now_ms()
    # The last beat, after the runner stopped, left the final figures.
    assert (gone.jobs_done, gone.jobs_failed, gone.running) == (1, 0, ())
    # The health body (``live_workers``) no longer counts it, though its row stays.
    assert await system.local.live_workers(system.clock.now_ms() - 60_000) == []
    assert (await system.monitor.health())["workers"] == []


async def _done(system: JobSystem, count: int) -> bool:
    return sum(w.jobs_done for w in (await view_of(system)).live) == count


@pytest.fixture(params=["sqlite", "postgres"])
async def manual(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobSystem]:
    opened = await _open(request, tmp_path, clock=ManualClock())
    yield opened
    await opened.close()


async def test_a_silent_worker_is_gone_with_its_jobs_then_forgotten(manual: JobSystem) -> None:
    """A worker whose beats end (killed) is live for three beats, then gone as
    ``silent`` with what it was running; an hour later its row is deleted."""
    clock = manual.clock
    assert isinstance(clock, ManualClock)
    running = {
        "queue": "pdf",
        "job_id": "job-1",
        "name": "order-sheet",
        "store": "local",
        "started_at_ms": clock.now_ms() - 500,
        "company_id": COMPANY,
    }
    details = WorkerDetails(
        version="9.9.9", concurrency={"pdf": 2}, running=[running], jobs_done=4, jobs_failed=1
    )
    await manual.local.record_worker(
        "w-killed", "host-a", 4242, ["pdf"], clock.now_ms() - 1000, details=details
    )
    window_ms = int(3 * HEARTBEAT_S * 1000)
    clock.advance(window_ms)
    assert [w.worker_id for w in (await view_of(manual)).live] == ["w-killed"]
    clock.advance(1)
    view = await view_of(manual)
    assert view.live == ()
    (gone,) = view.recently_gone
    assert gone.gone is GoneReason.SILENT and gone.stopped_at_ms is None
    assert (gone.version, gone.jobs_done, gone.jobs_failed) == ("9.9.9", 4, 1)
    assert [job.job_id for job in gone.running] == ["job-1"]
    clock.advance(WORKER_RETENTION_MS)
    assert await view_of(manual) == WorkersView(clock.now_ms(), HEARTBEAT_S)
    # Deleted, not just hidden: a later look at a longer window finds nothing either.
    assert await manual.local.live_workers(0) == []


def test_a_company_sees_no_hosts_and_only_its_own_running_jobs() -> None:
    def job(job_id: str, company_id: str | None) -> dict[str, Any]:
        return {"queue": "pdf", "job_id": job_id, "name": "n", "company_id": company_id}

    row = {
        "worker_id": "w1",
        "host": "host-a",
        "pid": 7,
        "queues": ["pdf"],
        "started_at_ms": 1,
        "seen_at_ms": 10,
        "version": "1",
        "concurrency": {"pdf": 3},
        "running": [job("a", COMPANY), job("b", OTHER), job("c", None)],
        "jobs_done": 0,
        "jobs_failed": 0,
        "stopped_at_ms": None,
    }
    full = WorkersView(10, 1.0, live=(worker_from_row(row, 0),))
    assert full.for_company(None) == full
    (mine,) = full.for_company(COMPANY).live
    assert (mine.host, mine.pid) == (None, None)
    assert [j.job_id for j in mine.running] == ["a"]
    assert (mine.other_running, mine.running_total, mine.slots) == (2, 3, 3)
    (theirs,) = full.for_company(OTHER).live
    assert [j.job_id for j in theirs.running] == ["b"]


def test_a_row_of_the_previous_release_reads_as_a_worker_without_details() -> None:
    row = {
        "worker_id": "w0",
        "host": "h",
        "pid": 1,
        "queues": ["email"],
        "started_at_ms": 1,
        "seen_at_ms": 5,
    }
    worker = worker_from_row(row, live_since_ms=0)
    assert worker.live
    assert (worker.version, worker.running, worker.concurrency) == (None, (), {})
    assert (worker.jobs_done, worker.jobs_failed) == (0, 0)
