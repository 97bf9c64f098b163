"""The ``scheduled`` queue's handlers, and BullMQ's job schedulers in Redis mode."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind, Role, User, UserSession
from ils.domain.content import Notification
from ils.errors import PermanentJobError
from ils.jobs.job_types import CleanupExpiredData, RunSchedule
from ils.jobs.model import JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.schedules.cron import ScheduleSpec
from ils.jobs.schedules.store import Schedule, ScheduledJob, ScheduleStore
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import scheduled
from ils.workers.scheduled import ScheduledWorker
from tests.conftest import delete_prefix
from tests.workers.support import FakeContext, eventually

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
#: BullMQ states of a tick not yet taken (ticks have priority 1: "prioritized").
PENDING = ["delayed", "waiting", "prioritized"]


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[JobSystem]:
    settings = Settings(_env_file=None, data_dir=tmp_path / "var", redis_url=None)
    opened = await JobSystem.open(settings, clock=ManualClock(int(NOW.timestamp() * 1000)))
    try:
        yield opened
    finally:
        await opened.close()


def _worker(system: JobSystem) -> ScheduledWorker:
    registry = HandlerRegistry(system.job_types)
    return scheduled.register(registry, system.worker_context())


async def _save(system: JobSystem, schedule: Schedule) -> None:
    async with session_factory(system.engine)() as session, session.begin():
        await ScheduleStore().save(session, schedule, NOW - timedelta(days=1))


def _briefing_schedule(company_id: str, catch_up: str = "once") -> Schedule:
    return Schedule(
        id=f"test:{company_id}",
        name="Briefing",
        spec=ScheduleSpec(cron="0 8 * * *", every_s=None, time_zone="Europe/London"),
        jobs=(ScheduledJob("ai", "daily-briefing", {"companyId": company_id, "date": "{date}"}),),
        company_id=company_id,
        catch_up="skip" if catch_up == "skip" else "once",
    )


async def test_a_tick_enqueues_the_jobs_once_per_due_time(system: JobSystem) -> None:
    worker = _worker(system)
    await _save(system, _briefing_schedule("c1"))
    payload = RunSchedule(schedule_id="test:c1")
    first = await worker.run_schedule(payload, FakeContext("t1", "scheduled"))
    again = await worker.run_schedule(payload, FakeContext("t2", "scheduled"))
    assert len(first["jobs"]) == 1 and "already ran" in again["skipped"]
    jobs = await system.local.list_jobs("ai", JobState.WAITING)
    assert len(jobs) == 1
    assert jobs[0].data == {
        "type": "daily-briefing",
        "companyId": "c1",
        "date": "2026-11-20",
    }
    assert jobs[0].company_id == "c1"
    # Run now makes a run of its own.
    manual = RunSchedule(schedule_id="test:c1", manual=True)
    await worker.run_schedule(manual, FakeContext("t3", "scheduled"))
    assert len(await system.local.list_jobs("ai", JobState.WAITING)) == 2


async def test_a_due_time_runs_once_even_when_its_jobs_went_to_another_store(
    system: JobSystem,
) -> None:
    # As if the first run's job had gone to Redis, and a second tick for the same
    # due time came through the local store after a fail-over: the job is not here,
    # but the schedule's row remembers the run.
    worker = _worker(system)
    await _save(system, _briefing_schedule("c2"))
    payload = RunSchedule(schedule_id="test:c2")
    first = await worker.run_schedule(payload, FakeContext("t1", "scheduled"))
    (job,) = await system.local.list_jobs("ai", JobState.WAITING)
    await system.local.remove_job("ai", job.id)
    again = await worker.run_schedule(payload, FakeContext("t2", "scheduled"))
    assert "already ran" in again["skipped"]
    assert await system.local.list_jobs("ai", JobState.WAITING) == []
    async with session_factory(system.engine)() as session:
        stored = await ScheduleStore().get(session, "test:c2")
    assert stored is not None and stored.last_run_at is not None
    assert first["due"] == stored.last_run_at.isoformat()


async def test_skip_drops_a_late_tick_and_once_runs_it(system: JobSystem) -> None:
    worker = _worker(system)
    await _save(system, _briefing_schedule("late", catch_up="skip"))
    payload = RunSchedule(schedule_id="test:late")
    # 09:00 is an hour after the 08:00 run: later than the 5-minute grace.
    result = await worker.run_schedule(payload, FakeContext("t1", "scheduled"))
    assert "skipped" in result and "catch-up: skip" in result["skipped"]
    assert await system.local.list_jobs("ai", JobState.WAITING) == []
    await _save(system, _briefing_schedule("late", catch_up="once"))
    result = await worker.run_schedule(payload, FakeContext("t2", "scheduled"))
    assert len(result["jobs"]) == 1


async def test_a_tick_of_a_deleted_schedule_fails_for_good(system: JobSystem) -> None:
    worker = _worker(system)
    payload = RunSchedule(schedule_id="gone")
    with pytest.raises(PermanentJobError, match="does not exist"):
        await worker.run_schedule(payload, FakeContext("t1", "scheduled"))


async def test_cleanup_deletes_expired_data_and_unreferenced_files(system: JobSystem) -> None:
    worker = _worker(system)
    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        company = Company(kind=CompanyKind.LAB, name="Lab")
        session.add(company)
        await session.flush()
        user = User(
            company_id=company.id, email="a@lab.example", name="A", password_hash="x",
            role=Role.ADMIN,
        )  # fmt: skip
        session.add(user)
        await session.flush()

        def note(title: str, age_days: int, read: bool) -> Notification:
            at = NOW - timedelta(days=age_days)
            return Notification(
                company_id=company.id, user_id=user.id, kind="system", title=title,
                message="m", created_at=at, read_at=at if read else None,
            )  # fmt: skip

        session.add_all(
            [
                note("old read", 100, True),
                note("old unread", 100, False),
                note("ancient unread", 400, False),
                note("new read", 5, True),
            ]
        )
        session.add_all(
            [
                UserSession(id="expired", user_id=user.id, expires_at=NOW - timedelta(hours=1),
                            csrf_token="x"),
                UserSession(id="live", user_id=user.id, expires_at=NOW + timedelta(hours=1),
                            csrf_token="y"),
            ]
        )  # fmt: skip
    documents = system.settings.documents_dir
    (documents / "c").mkdir(parents=True)
    orphan, fresh = documents / "c" / "orphan.pdf", documents / "c" / "fresh.pdf"
    orphan.write_bytes(b"%PDF")
    fresh.write_bytes(b"%PDF")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(orphan, (two_days_ago, two_days_ago))
    payload = CleanupExpiredData()
    result = await worker.cleanup(payload, FakeContext("c1", "scheduled"))
    assert result == {"notifications": 2, "sessions": 1, "files": 1}
    async with sessions() as session:
        titles = set(await session.scalars(select(Notification.title)))
        assert titles == {"old unread", "new read"}
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 1
    assert not orphan.exists() and fresh.exists()


# -- Redis mode: BullMQ's job schedulers -------------------------------------------------


@pytest.mark.redis
async def test_bullmq_schedulers_follow_the_table_and_ticks_advance(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "var", redis_url=redis_url, redis_prefix=redis_prefix
    )
    system = await JobSystem.open(settings)
    try:
        every = Schedule(
            id="every-minute",
            name="Every minute",
            spec=ScheduleSpec(cron=None, every_s=60, time_zone="UTC"),
            jobs=(ScheduledJob("scheduled", "cleanup-expired-data", {}),),
        )
        daily = _briefing_schedule("c9")
        assert await system.schedulers.sync([every, daily]) == 2
        assert await system.schedulers.sync([every, daily]) == 0  # unchanged: untouched
        redis = system.redis
        assert redis is not None
        queue = redis._bull("scheduled").queue
        record = await queue.getJobScheduler(daily.id)
        assert record["pattern"] == "0 8 * * *" and record["tz"] == "Europe/London"
        # BullMQ's next tick is the next 08:00 London as our cron rules compute it.
        # An interval's first tick is due at once (BullMQ), a cron's at its time.
        ticks = {job.data["scheduleId"]: job for job in await queue.getJobs(PENDING)}
        assert set(ticks) == {"every-minute", "test:c9"}
        due_ms = ticks["test:c9"].timestamp + ticks["test:c9"].delay
        due = datetime.fromtimestamp(due_ms / 1000, UTC)
        assert due.astimezone(ZoneInfo("Europe/London")).hour == 8
        # Taking a tick makes the next one (what BullMQ's own Worker does).
        await queue.promoteJobs()
        worker = _worker(system)
        registry = HandlerRegistry(system.job_types)
        seen: list[str] = []

        async def tick(payload: Any, ctx: Any) -> dict[str, Any]:
            seen.append(payload.schedule_id)
            return {"seen": True}

        registry.register(RunSchedule, tick)
        registry.register(CleanupExpiredData, worker.cleanup)
        runner = Runner(system.stores(), [system.catalogue["scheduled"]], registry)
        runner.start()
        try:
            await eventually(lambda: len(seen) >= 2, timeout=10)
        finally:
            await runner.stop(5)
        assert sorted(seen) == ["every-minute", "test:c9"]
        await asyncio.sleep(0.2)
        next_ticks = {job.data["scheduleId"] for job in await queue.getJobs(PENDING)}
        assert next_ticks == {"every-minute", "test:c9"}
        # Pausing (a schedule not wanted any more) removes its BullMQ scheduler.
        assert await system.schedulers.sync([every]) == 1
        assert not await queue.isJobScheduler(daily.id)
    finally:
        await system.close()
        await delete_prefix(redis_url, redis_prefix)
