"""Schedules in local mode with an injected clock: exactly once, in local time, across
daylight-saving changes, with two scheduler processes, and after an outage.

A "process" is a job system with its own scheduler loop on the shared database (the
test moves one clock both read). Each round the loops claim what is due, then the
ticks they added are run by the ``run-schedule`` handler at the same moment, as a
worker would at once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.companies import Company, CompanyKind
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.schedules.store import ScheduleStore
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import scheduled
from ils.workers.scheduled.loop import ScheduleLoop
from tests.workers.support import FakeContext

LONDON, NEW_YORK = "Europe/London", "America/New_York"
#: Saturday before London's autumn change (25 Oct) until after New York's (1 Nov).
WINDOW_START = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 10


@dataclass
class Process:
    system: JobSystem
    registry: HandlerRegistry
    loop: ScheduleLoop


@dataclass
class Env:
    clock: ManualClock
    processes: list[Process]
    sessions: async_sessionmaker[AsyncSession]
    companies: dict[str, Company]

    @property
    def system(self) -> JobSystem:
        return self.processes[0].system

    def at(self, moment: datetime) -> None:
        self.clock._now = int(moment.timestamp() * 1000)

    async def round(self, *, concurrently: bool = False) -> int:
        """Every process's loop claims, then the new ticks run."""
        if concurrently:
            added = sum(await asyncio.gather(*(p.loop.round() for p in self.processes)))
        else:
            added = 0
            for process in self.processes:
                added += await process.loop.round()
        await self.run_ticks()
        return added

    async def run_ticks(self) -> None:
        registration = self.processes[0].registry.lookup("scheduled", "run-schedule")
        assert registration is not None
        for job in await self.jobs("scheduled", "run-schedule", JobState.WAITING):
            payload = registration.parse(job.data)
            await registration.handler(payload, FakeContext(job.id, "scheduled"))
            await self.system.local.remove_job("scheduled", job.id)

    async def jobs(self, queue: str, name: str, state: JobState | None = None) -> list[JobRecord]:
        found: list[JobRecord] = []
        for s in [state] if state else list(JobState):
            found += await self.system.local.list_jobs(queue, s, limit=10_000)
        return [job for job in found if job.name == name]


async def _company(sessions: async_sessionmaker[AsyncSession], name: str, zone: str) -> Company:
    company = Company(kind=CompanyKind.LAB, name=name, time_zone=zone)
    async with sessions() as session, session.begin():
        session.add(company)
    return company


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    options: dict[str, Any] = {"data_dir": tmp_path / "var", "redis_url": None}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        options["database_url"] = url
    clock = ManualClock(start_ms=int(WINDOW_START.timestamp() * 1000))
    settings = Settings(_env_file=None, **options)
    processes = []
    for _ in range(2):
        system = await JobSystem.open(settings, clock=clock)
        registry = HandlerRegistry(system.job_types)
        scheduled.register(registry, system.worker_context())
        processes.append(
            Process(system, registry, ScheduleLoop(system.worker_context(), ScheduleStore()))
        )
    sessions = session_factory(processes[0].system.engine)
    companies = {
        LONDON: await _company(sessions, "London Lab", LONDON),
        NEW_YORK: await _company(sessions, "New York Lab", NEW_YORK),
    }
    try:
        yield Env(clock, processes, sessions, companies)
    finally:
        for process in processes:
            await process.system.close()


def _briefings_by_company(jobs: list[JobRecord]) -> dict[str, list[JobRecord]]:
    found: dict[str, list[JobRecord]] = {}
    for job in jobs:
        found.setdefault(job.data["companyId"], []).append(job)
    return found


def _due(job: JobRecord) -> datetime:
    """The due time a scheduled job was made for (its id holds it, in ms)."""
    stamp = re.findall(r"-(\d{12,})(?:-\d+)?$", job.id)
    assert stamp, job.id
    return datetime.fromtimestamp(int(stamp[0]) / 1000, UTC)


async def test_a_week_across_dst_gives_one_briefing_a_day_at_8_local(env: Env) -> None:
    end = WINDOW_START + timedelta(days=WINDOW_DAYS)
    moment = WINDOW_START
    while moment < end:
        env.at(moment)
        await env.round()
        moment += timedelta(minutes=30)
    by_company = _briefings_by_company(await env.jobs("ai", "daily-briefing"))
    assert set(by_company) == {c.id for c in env.companies.values()}
    for zone, company in env.companies.items():
        jobs = sorted(by_company[company.id], key=_due)
        local = [_due(job).astimezone(ZoneInfo(zone)) for job in jobs]
        assert len(jobs) == WINDOW_DAYS, (zone, local)
        assert all((t.hour, t.minute) == (8, 0) for t in local), local
        dates = [t.date() for t in local]
        assert dates == [dates[0] + timedelta(days=n) for n in range(WINDOW_DAYS)]
        # The job's date is the local date of its run.
        assert [job.data["date"] for job in jobs] == [d.isoformat() for d in dates]
        gaps = {(b - a) for a, b in itertools.pairwise(local)}
        utc_gaps = {_due(b) - _due(a) for a, b in itertools.pairwise(jobs)}
        assert gaps == {timedelta(days=1)}
        assert timedelta(hours=25) in utc_gaps  # the change happened in the window
    # Anomaly runs: nightly at 03:30 local, 3 metrics for a lab, once a night.
    anomalies = await env.jobs("ai", "anomaly-detection")
    per_night = Counter((job.data["companyId"], _due(job).date()) for job in anomalies)
    assert set(per_night.values()) == {3}
    assert len(per_night) == 2 * WINDOW_DAYS
    # The weekly forecast: Mondays 26 Oct and 2 Nov at 05:00 local, both in the window.
    forecasts = _briefings_by_company(await env.jobs("ai", "demand-forecast"))
    for zone, company in env.companies.items():
        runs = [_due(job).astimezone(ZoneInfo(zone)) for job in forecasts[company.id]]
        assert sorted((t.date().isoformat(), t.hour) for t in runs) == [
            ("2026-10-26", 5),
            ("2026-11-02", 5),
        ]


async def test_two_processes_claiming_at_once_fire_each_due_time_once(env: Env) -> None:
    moment = WINDOW_START
    for _ in range(3 * 48):
        env.at(moment)
        await env.round(concurrently=True)
        moment += timedelta(minutes=30)
    briefings = await env.jobs("ai", "daily-briefing")
    assert Counter(job.id for job in briefings).most_common(1)[0][1] == 1
    assert len(briefings) == 3 * 2  # three days, two companies
    ticks = await env.jobs("scheduled", "run-schedule")
    assert ticks == []  # every tick ran and was removed
    # The same due time claimed again by a late process adds nothing.
    for process in env.processes:
        assert await process.loop.claim_due(moment) == 0


async def test_after_an_outage_catch_up_once_runs_one_briefing_and_skip_runs_none(
    env: Env,
) -> None:
    env.at(WINDOW_START)
    await env.round()  # built-in schedules made; nothing due yet
    # Down for three days; back at 10:15 UTC on the 27th.
    env.at(WINDOW_START + timedelta(days=3, hours=10, minutes=15))
    await env.round()
    briefings = await env.jobs("ai", "daily-briefing")
    london = [j for j in briefings if j.data["companyId"] == env.companies[LONDON].id]
    assert [j.data["date"] for j in london] == ["2026-10-27"]  # once, the newest
    # Anomalies are "skip": the 03:30 run missed by hours does not run late...
    assert await env.jobs("ai", "anomaly-detection") == []
    # ...and the next night's runs on time.
    env.at(datetime(2026, 10, 28, 3, 31, tzinfo=UTC))
    await env.round()
    london_night = [
        j
        for j in await env.jobs("ai", "anomaly-detection")
        if j.data["companyId"] == env.companies[LONDON].id
    ]
    assert len(london_night) == 3


async def test_a_paused_schedule_does_not_fire_and_resumes_from_now(env: Env) -> None:
    env.at(WINDOW_START)
    await env.round()
    store = ScheduleStore()
    schedule_id = f"briefing:{env.companies[LONDON].id}"
    async with env.sessions() as session, session.begin():
        await store.set_paused(session, schedule_id, True, WINDOW_START)
    env.at(WINDOW_START + timedelta(days=1, hours=12))
    await env.round()
    london = env.companies[LONDON].id
    assert [
        j for j in await env.jobs("ai", "daily-briefing") if j.data["companyId"] == london
    ] == []
    async with env.sessions() as session, session.begin():
        resumed = await store.set_paused(session, schedule_id, False, env_now(env))
    assert resumed is not None and resumed.next_run_at is not None
    assert resumed.next_run_at > env_now(env)  # missed runs of a pause are not caught up
    # The built-in sync keeps an admin's pause: pause again, sync, still paused.
    async with env.sessions() as session, session.begin():
        await store.set_paused(session, schedule_id, True, env_now(env))
    await env.processes[0].loop.sync(env_now(env))
    async with env.sessions() as session:
        again = await store.get(session, schedule_id)
    assert again is not None and again.paused


async def test_builtins_follow_the_active_companies(env: Env) -> None:
    env.at(WINDOW_START)
    await env.round()
    store = ScheduleStore()
    async with env.sessions() as session:
        ids = {s.id for s in await store.list(session, every_company=True)}
    london = env.companies[LONDON].id
    assert {f"briefing:{london}", f"anomalies:{london}", f"forecast:{london}", "cleanup"} <= ids
    async with env.sessions() as session, session.begin():
        await session.execute(update(Company).where(Company.id == london).values(is_active=False))
    await env.processes[0].loop.sync(env_now(env))
    async with env.sessions() as session:
        left = {s.id for s in await store.list(session, every_company=True)}
    assert not {i for i in left if i.endswith(london)}


def env_now(env: Env) -> datetime:
    return datetime.fromtimestamp(env.clock.now_ms() / 1000, UTC)
