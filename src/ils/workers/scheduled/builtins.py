"""The built-in schedules: what every active company gets, and the platform's clean-up.

* ``briefing:<company>``: the daily briefing at 08:00 in the company's own time zone
  (catch up once: a briefing late is better than none);
* ``anomalies:<company>``: anomaly detection at 03:30 local, for the metrics the
  company has (labs: revenue, orders, inventory; practices: revenue, orders, patients;
  suppliers: revenue), skipped rather than caught up after a long outage (the next
  night's run covers the days missed);
* ``forecast:<company>``: labs' demand forecast on Mondays at 05:00 local;
* ``cleanup``: the platform's clean-up of expired data at 04:00 UTC.

03:30 and 05:00 are outside every daylight-saving change in use (they happen between
00:00 and 03:00 local), though the cron rules would handle them anyway.
:func:`builtin_schedules` is pure; :func:`sync_builtins` writes them for the active
companies (keeping a schedule an admin paused paused) and removes those of companies
that are gone or inactive.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind
from ils.jobs.schedules.cron import ScheduleSpec
from ils.jobs.schedules.store import Schedule, ScheduledJob, ScheduleStore

CLEANUP_ID: Final = "cleanup"
METRICS: Final = {
    CompanyKind.LAB: ("revenue", "orders", "inventory"),
    CompanyKind.PRACTICE: ("revenue", "orders", "patients"),
    CompanyKind.SUPPLIER: ("revenue",),
}


def builtin_schedules(company: Company) -> list[Schedule]:
    """The built-in schedules of one company, in its time zone."""
    zone = company.zone.key
    schedules = [
        Schedule(
            id=f"briefing:{company.id}",
            name="Daily briefing",
            spec=ScheduleSpec(cron="0 8 * * *", every_s=None, time_zone=zone),
            jobs=(
                ScheduledJob("ai", "daily-briefing", {"companyId": company.id, "date": "{date}"}),
            ),
            company_id=company.id,
            builtin="briefing",
            catch_up="once",
        ),
        Schedule(
            id=f"anomalies:{company.id}",
            name="Anomaly detection",
            spec=ScheduleSpec(cron="30 3 * * *", every_s=None, time_zone=zone),
            jobs=tuple(
                ScheduledJob(
                    "ai",
                    "anomaly-detection",
                    {"companyId": company.id, "metricType": metric, "timeRange": "daily"},
                )
                for metric in METRICS[company.kind]
            ),
            company_id=company.id,
            builtin="anomalies",
            catch_up="skip",
        ),
    ]
    if company.kind is CompanyKind.LAB:
        schedules.append(
            Schedule(
                id=f"forecast:{company.id}",
                name="Weekly demand forecast",
                spec=ScheduleSpec(cron="0 5 * * 1", every_s=None, time_zone=zone),
                jobs=(
                    ScheduledJob(
                        "ai", "demand-forecast", {"companyId": company.id, "forecastDays": 30}
                    ),
                ),
                company_id=company.id,
                builtin="forecast",
                catch_up="once",
            )
        )
    return schedules


def cleanup_schedule() -> Schedule:
    """The platform's nightly clean-up (no company)."""
    return Schedule(
        id=CLEANUP_ID,
        name="Clean-up of expired data",
        spec=ScheduleSpec(cron="0 4 * * *", every_s=None, time_zone="UTC"),
        jobs=(ScheduledJob("scheduled", "cleanup-expired-data", {}),),
        builtin="cleanup",
        catch_up="once",
    )


async def sync_builtins(session: AsyncSession, store: ScheduleStore, now: datetime) -> int:
    """Make the built-in schedules match the active companies; how many changed.

    A built-in schedule an admin paused stays paused; one whose definition is already
    right is left alone, so its next run is not moved.
    """
    companies = (await session.scalars(select(Company).where(Company.is_active.is_(True)))).all()
    wanted = [cleanup_schedule()] + [s for c in companies for s in builtin_schedules(c)]
    existing = {s.id: s for s in await store.list(session, every_company=True) if s.builtin}
    changed = 0
    for schedule in wanted:
        current = existing.pop(schedule.id, None)
        if current is not None and _same(current, schedule):
            continue
        paused = current.paused if current is not None else False
        await store.save(session, replace(schedule, paused=paused), now)
        changed += 1
    for gone in existing.values():
        await store.delete(session, gone.id)
        changed += 1
    return changed


def _same(current: Schedule, wanted: Schedule) -> bool:
    return (
        current.spec == wanted.spec
        and current.jobs == wanted.jobs
        and current.catch_up == wanted.catch_up
        and current.name == wanted.name
        and current.company_id == wanted.company_id
    )
