"""Two copies of one job at once, for the handlers with an effect outside their row.

A job can run twice concurrently (the same job id in two stores, or a worker that
lost its lock and still runs). The e-mail worker's send lease has its own tests
(``test_mail_claim.py``); these check the other handlers whose effect a second
copy could repeat: a notification (one row per job), the urgent-notification
e-mail check (one e-mail per notification), a document (one version per job) and
a schedule's tick (one run per due time). Each starts the copies together with
``asyncio.gather`` on SQLite and on PostgreSQL, where two transactions really run
side by side (SQLite serializes writers). On PostgreSQL the notification tests
hold each copy after its first read until every copy has read (``read_together``),
so the copies always race the way that used to store or queue twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.db.transactions import Transactions
from ils.domain.content import Document, Notification
from ils.jobs.model import JobRecord, JobState
from ils.jobs.payloads.notification import SystemNotification, UrgentNotificationEmail
from ils.jobs.payloads.scheduled import RunSchedule
from ils.jobs.registry import HandlerRegistry
from ils.jobs.schedules.cron import ScheduleSpec
from ils.jobs.schedules.store import Schedule, ScheduledJob, ScheduleStore
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.storage import LocalFileStorage
from ils.workers import notification, scheduled
from ils.workers.pdf.generate import DocumentGenerator, generate_lab_work_ticket
from ils.workers.pdf.pool import InlineRenderer
from tests.workers.pdf_support import build_records
from tests.workers.support import FakeContext, build_network

pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgres"])

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
COPIES = 3

SystemFactory = Callable[[str], Awaitable[JobSystem]]
T = TypeVar("T")


@pytest.fixture
async def make_system(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SystemFactory]:
    """A local-mode job system on a fresh SQLite or PostgreSQL database."""
    opened: list[JobSystem] = []

    async def factory(database: str) -> JobSystem:
        options: dict[str, Any] = {"data_dir": tmp_path / "var", "redis_url": None}
        if database == "postgres":
            url = request.getfixturevalue("pg_url")
            await upgrade_database(url)
            options["database_url"] = url
        clock = ManualClock(int(NOW.timestamp() * 1000))
        system = await JobSystem.open(Settings(_env_file=None, **options), clock=clock)
        opened.append(system)
        return system

    try:
        yield factory
    finally:
        for system in opened:
            await system.close()


async def jobs_named(system: JobSystem, queue: str, name: str) -> list[JobRecord]:
    found: list[JobRecord] = []
    for state in JobState:
        found += await system.local.list_jobs(queue, state, limit=1000)
    return [job for job in found if job.name == name]


def read_together(db: Transactions, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each write transaction of ``db`` after its first read until ``COPIES`` of
    them have read: every copy then acts on a row it saw before any copy changed it.
    PostgreSQL only (SQLite lets one writer in at a time, so the others never read)."""
    barrier = asyncio.Barrier(COPIES)
    write = db.write

    @contextlib.asynccontextmanager
    async def held() -> AsyncIterator[AsyncSession]:
        async with write() as session:
            scalar = session.scalar

            async def read_then_wait(*args: Any, **kwargs: Any) -> Any:
                monkeypatch.setattr(session, "scalar", scalar)
                found = await scalar(*args, **kwargs)
                await asyncio.wait_for(barrier.wait(), 20)
                return found

            monkeypatch.setattr(session, "scalar", read_then_wait)
            yield session

    monkeypatch.setattr(db, "write", held)


async def test_copies_of_a_notification_job_store_one_notification(
    make_system: SystemFactory, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = await make_system(database)
    sessions = session_factory(system.engine)
    network = await build_network(sessions)
    worker = notification.register(HandlerRegistry(system.job_types), system.worker_context())
    payload = SystemNotification.model_validate(
        {
            "user_id": network.lab_admin.id,
            "title": "Remake needed",
            "message": "Order needs a remake today.",
            "priority": "urgent",
        }
    )
    if database == "postgres":
        read_together(worker.db, monkeypatch)
    results = await _together(
        lambda: worker.system_notification(payload, FakeContext("n-1", "notification"))
    )
    async with sessions() as session:
        rows = list(await session.scalars(select(Notification)))
    assert len(rows) == 1
    assert {result["notificationId"] for result in results} == {rows[0].id}
    assert sorted(result["created"] for result in results) == [False] * (COPIES - 1) + [True]
    assert len(await jobs_named(system, "notification", "urgent-notification-email")) == 1


async def test_copies_of_an_urgent_email_check_queue_one_email(
    make_system: SystemFactory, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = await make_system(database)
    sessions = session_factory(system.engine)
    network = await build_network(sessions)
    worker = notification.register(HandlerRegistry(system.job_types), system.worker_context())
    stored = await worker.system_notification(
        SystemNotification.model_validate(
            {"user_id": network.lab_admin.id, "title": "T", "message": "M", "priority": "urgent"}
        ),
        FakeContext("n-1", "notification"),
    )
    payload = UrgentNotificationEmail.model_validate({"notification_id": stored["notificationId"]})
    if database == "postgres":
        read_together(worker.db, monkeypatch)
    results = await _together(lambda: worker.escalate(payload, FakeContext("c-1", "notification")))
    assert sorted(result["outcome"] for result in results) == ["already e-mailed"] * (
        COPIES - 1
    ) + ["e-mailed"]
    assert len(await jobs_named(system, "email", "general-notification")) == 1


async def test_copies_of_a_document_job_store_one_version(
    make_system: SystemFactory, database: str, tmp_path: Path
) -> None:
    system = await make_system(database)
    sessions = session_factory(system.engine)
    records = await build_records(sessions)
    directory = tmp_path / "documents"
    generator = DocumentGenerator(
        system.worker_context().db, LocalFileStorage(directory), InlineRenderer()
    )
    made = await _together(
        lambda: generate_lab_work_ticket(generator, records.order.id, job_id="d-1")
    )
    assert {document.id for document in made} == {made[0].id}
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Document))
    assert count == 1
    assert len([path for path in directory.rglob("*") if path.is_file()]) == 1


async def test_copies_of_a_schedule_tick_run_its_due_time_once(
    make_system: SystemFactory, database: str
) -> None:
    system = await make_system(database)
    worker = scheduled.register(HandlerRegistry(system.job_types), system.worker_context())
    schedule = Schedule(
        id="test:c1",
        name="Briefing",
        spec=ScheduleSpec(cron="0 8 * * *", every_s=None, time_zone="Europe/London"),
        jobs=(ScheduledJob("ai", "daily-briefing", {"companyId": "c1", "date": "{date}"}),),
        company_id="c1",
    )
    async with session_factory(system.engine)() as session, session.begin():
        await ScheduleStore().save(session, schedule, NOW - timedelta(days=1))
    payload = RunSchedule(schedule_id="test:c1")
    results = await _together(lambda: worker.run_schedule(payload, FakeContext("t-1", "scheduled")))
    ran = [result for result in results if "jobs" in result]
    assert len(ran) == 1
    assert all("already ran" in result["skipped"] for result in results if result not in ran)
    assert len(await jobs_named(system, "ai", "daily-briefing")) == 1


async def _together(copy: Callable[[], Awaitable[T]]) -> list[T]:
    """``COPIES`` runs of ``copy`` started at once; every one must finish."""
    runs = asyncio.gather(*(copy() for _ in range(COPIES)))
    return list(await asyncio.wait_for(runs, 60))
