"""Transactional enqueue: a job in the caller's transaction.

Local mode writes the job row itself in that transaction; Redis mode writes an outbox
row and relays it to Redis after commit. Both: a rollback queues nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ils.db.engine import session_factory
from ils.errors import StoreUnavailableError
from ils.jobs.model import JobState, NewJob
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from tests.conftest import delete_prefix


@pytest.fixture(params=["local", "redis"])
async def system(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobSystem]:
    extra: dict[str, Any] = {}
    if request.param == "redis":
        extra = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    opened = await JobSystem.open(Settings(data_dir=tmp_path, **extra))
    yield opened
    await opened.close()
    if extra:
        await delete_prefix(extra["redis_url"], extra["redis_prefix"])


async def find(system: JobSystem, job_id: str) -> Any:
    for store in system.stores():
        record = await store.get_job("email", job_id)
        if record is not None:
            return record
    return None


async def test_commit_queues_the_job(system: JobSystem) -> None:
    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT 1"))
        ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1", session=session)
        assert ref.store == ("outbox" if system.redis is not None else "local")
    await system.producer.outbox.drain_tasks()
    record = await find(system, ref.job_id)
    assert record is not None
    assert record.state is JobState.WAITING
    assert record.data["orderId"] == "ord-1"
    assert record.priority == 1
    assert await system.producer.outbox.pending() == 0


async def test_rollback_queues_nothing(system: JobSystem) -> None:
    sessions = session_factory(system.engine)
    async with sessions() as session:
        ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1", session=session)
        await session.flush()
        await session.rollback()
    await system.producer.outbox.drain_tasks()
    assert await system.producer.outbox.relay() == 0
    assert await find(system, ref.job_id) is None
    assert await system.producer.outbox.pending() == 0
    assert (await system.monitor.counts("email"))["waiting"] == 0


@pytest.mark.parametrize("system", ["redis"], indirect=True)  # local mode has no relay
async def test_crash_between_commit_and_relay_is_swept(
    system: JobSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = system.producer.outbox

    async def down(queue: str, jobs: Sequence[NewJob], in_outbox: bool) -> str:
        raise StoreUnavailableError("store down")

    monkeypatch.setattr(outbox, "_deliver", down)
    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1", session=session)
    await outbox.drain_tasks()
    assert await outbox.pending() == 1
    assert await find(system, ref.job_id) is None
    monkeypatch.setattr(outbox, "_deliver", system.producer.deliver_many)
    await system.local.clean("email", JobState.WAITING)  # nothing there; the sweep must do it
    # The failed relay claimed the row for a while; a later sweep (here: claim expired) relays it.
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE ils_outbox SET claimed_until_ms = 0"))
    assert await outbox.relay() == 1
    assert await outbox.pending() == 0
    assert await find(system, ref.job_id) is not None


async def test_relaying_twice_makes_one_job(system: JobSystem) -> None:
    job = NewJob(
        "order-confirmation", {"type": "order-confirmation", "orderId": "o", "userId": "u"}
    )
    from dataclasses import replace

    job = replace(job, options=replace(job.options, job_id="tx-fixed-id"))
    await system.producer.deliver("email", job)
    await system.producer.deliver("email", job)
    assert (await system.monitor.counts("email"))["waiting"] == 1


async def test_idle_sweep_and_restart_take_no_write_lock(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock does not stall an idle outbox sweep
    or a process starting on a current schema (a worker starting beside busy
    producers used to hold that lock for hundreds of milliseconds)."""
    settings = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    first = await JobSystem.open(settings)
    await first.close()
    other_process = sqlite3.connect(tmp_path / "ils.db", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        second = await asyncio.wait_for(JobSystem.open(settings), 10)
        try:
            assert await asyncio.wait_for(second.producer.outbox.relay(), 2) == 0
        finally:
            await second.close()
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()


@pytest.mark.parametrize("system", ["redis"], indirect=True)
async def test_a_commit_relays_its_rows_in_one_add_per_queue_beside_another_relay(
    system: JobSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit's jobs reach Redis in one add per queue, without waiting for a relay
    already running. Before, every commit queued behind one lock for a relay of every
    waiting row, an add and a delete transaction a row: on PostgreSQL + Redis with
    1,000 users (bench/users.py) thousands of jobs waited in the outbox while the
    queues in Redis stood empty."""
    outbox = system.producer.outbox
    adds: list[tuple[str, int]] = []

    async def counted(queue: str, jobs: Sequence[NewJob], in_outbox: bool) -> str:
        adds.append((queue, len(jobs)))
        return await system.producer.deliver_many(queue, jobs, in_outbox)

    monkeypatch.setattr(outbox, "_deliver", counted)
    sessions = session_factory(system.engine)
    async with outbox._lock:  # a sweep's relay is running (a long one: it never ends)
        async with sessions() as session, session.begin():
            refs = [
                await system.helpers.queue_order_confirmation_email(f"o{i}", "u", session=session)
                for i in range(50)
            ]
            refs.append(await system.helpers.queue_order_sheet_pdf("o0", session=session))

        async def all_in_redis() -> bool:
            return await outbox.pending() == 0

        await eventually(all_in_redis, 10, message=lambda: f"adds so far: {adds}")
    assert sorted(adds) == [("email", 50), ("pdf", 1)]
    assert system.redis is not None
    for ref in refs:
        assert await system.redis.get_job(ref.queue, ref.job_id) is not None


@pytest.mark.parametrize("system", ["redis"], indirect=True)
async def test_a_relayed_add_slower_than_the_enqueue_budget_is_not_held(
    system: JobSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay waits for Redis's answer: its jobs are safe in the outbox, and nobody
    waits on it. Before, a relayed add past the 25 ms enqueue budget (a busy event
    loop, a healthy Redis) made the gate suspect an outage and held each of its jobs,
    two more transactions a job, on a server already short of time."""
    redis = system.redis
    assert redis is not None
    start_add_bulk = redis.start_add_bulk

    # The loop was busy: Redis's answer is read late.
    async def late(queue: str, jobs: Sequence[NewJob]) -> list[str]:
        await asyncio.sleep(0.2)
        return await start_add_bulk(queue, jobs)

    monkeypatch.setattr(
        redis, "start_add_bulk", lambda queue, jobs: asyncio.ensure_future(late(queue, jobs))
    )
    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1", session=session)
    await system.producer.outbox.drain_tasks()
    held = await system.producer.outbox.held()
    assert held.count == 0
    assert held.resolved == {"was_in_redis": 0, "added_again": 0}
    assert system.job_stores.gate is not None
    assert system.job_stores.gate.suspicions == 0
    assert await redis.get_job("email", ref.job_id) is not None
    assert await system.producer.outbox.pending() == 0


@pytest.mark.parametrize("system", ["redis"], indirect=True)
async def test_a_commit_of_more_jobs_than_a_batch_relays_them_all(system: JobSystem) -> None:
    """A commit's own relay takes its rows a batch (200) at a time until all are in
    Redis: a batch of invoices or a schedule's fan-out does not wait for the sweep."""
    outbox = system.producer.outbox
    sessions = session_factory(system.engine)
    rows: list[dict[str, object]] = [{"order_id": f"o{i}", "user_id": "u"} for i in range(450)]
    async with outbox._lock:  # no sweep can help
        async with sessions() as session, session.begin():
            refs = await system.helpers.queue_many(
                "email", "order-confirmation", rows, session=session
            )

        async def all_in_redis() -> bool:
            return await outbox.pending() == 0

        await eventually(all_in_redis, 10, message="jobs left in the outbox")
    assert len(refs) == 450
    assert (await system.monitor.counts("email"))["waiting"] == 450


@pytest.mark.parametrize("system", ["redis"], indirect=True)
async def test_a_failed_relay_is_logged_by_kind_and_swept_later(
    system: JobSystem, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = system.producer.outbox

    async def broken(queue: str, jobs: Sequence[NewJob], in_outbox: bool) -> str:
        raise RuntimeError("INSERT ... Jane Doe")  # a message that may quote data

    monkeypatch.setattr(outbox, "_deliver", broken)
    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        await system.helpers.queue_order_confirmation_email("ord-1", "usr-1", session=session)
    await outbox.drain_tasks()
    assert "outbox: a relay failed (RuntimeError)" in caplog.text
    assert "Jane Doe" not in caplog.text
    assert await outbox.pending() == 1  # kept for the sweep
