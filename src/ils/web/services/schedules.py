"""What the schedule API may do for whom, and turning bodies into schedules.

* A platform admin sees and manages every schedule, platform-wide ones included, may
  schedule any job type, and chooses whose schedule it is (``company_id``, or
  ``company_wide`` for the platform's own).
* An admin or company admin sees and manages their company's schedules, and may
  schedule only their company's AI jobs (briefing, forecast, anomalies, insights):
  ``companyId`` is set to their company. Any other job could name another company's
  users or records, and a schedule would run it without the checks of a request.
* Built-in schedules are made from the companies (``ils.workers.scheduled.builtins``):
  they may be paused, resumed and run now, but not edited or deleted (the next sync
  would put them back).

Timing problems are answered in words a person can act on (what the five parts of a
cron expression are, with examples), never by repeating the value sent, because the
dashboard's form shows them next to the field as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, Role, User
from ils.errors import InvalidPayloadError, UnknownJobTypeError
from ils.jobs.job_types import JobTypes, validate_payload
from ils.jobs.payloads.ai import AiInsightType, MetricType
from ils.jobs.schedules.cron import ScheduleSpec, ScheduleSpecError, next_run, validate
from ils.jobs.schedules.store import Schedule, ScheduledJob
from ils.web.schemas.schedules import (
    RunPreviewOut,
    ScheduledJobIn,
    ScheduleEdit,
    ScheduleIn,
    ScheduleOut,
    SchedulePreviewIn,
    SchedulePreviewOut,
)
from ils.web.services.common import field_error
from ils.web.services.schedule_words import cron_problem, zone_problem
from ils.workers.scheduled.handlers import fill


@dataclass(frozen=True, slots=True)
class JobParam:
    """A choice the form asks for with one select, written to the job's ``data[key]``."""

    key: str
    label: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchedulableJob:
    """A job that makes sense on a calendar, with the data it is scheduled with.

    One list for the API's rules and the dashboard's form, so a job the form offers is
    one the API accepts. Each entry's data is complete but for ``param`` (``"{date}"``
    becomes the run's local date); ``company`` jobs run for the schedule's company
    (``companyId`` is set to it) and are the ones company admins may schedule.
    """

    queue: str
    name: str
    label: str
    data: Mapping[str, Any] = field(default_factory=dict)
    company: bool = True
    param: JobParam | None = None

    @property
    def key(self) -> str:
        return f"{self.queue}/{self.name}"

    def as_json(self) -> dict[str, Any]:
        """The ``jobs`` entry of a create body (the form fills in ``param``)."""
        return {"queue": self.queue, "name": self.name, "data": dict(self.data)}


#: What may run on a calendar. Jobs about one order, invoice, message or upload are
#: not here: they follow an event, and a schedule would repeat them on stale ids.
SCHEDULABLE_JOBS: Final = (
    SchedulableJob("ai", "daily-briefing", "Daily briefing", {"date": "{date}"}),
    SchedulableJob("ai", "demand-forecast", "Demand forecast (30 days)", {"forecastDays": 30}),
    SchedulableJob(
        "ai",
        "anomaly-detection",
        "Anomaly detection (daily)",
        {"timeRange": "daily"},
        param=JobParam("metricType", "Metric", get_args(MetricType)),
    ),
    SchedulableJob(
        "ai",
        "insight-generation",
        "Insights on the day of the run",
        {"periodStart": "{date}", "periodEnd": "{date}"},
        param=JobParam("insightType", "Insight", get_args(AiInsightType)),
    ),
    SchedulableJob(
        "scheduled", "cleanup-expired-data", "Clean-up of expired data", {}, company=False
    ),
)
#: What a company's own admins may schedule.
COMPANY_JOBS: Final = frozenset((job.queue, job.name) for job in SCHEDULABLE_JOBS if job.company)


def sees(user: User, schedule: Schedule) -> bool:
    """Whether ``user`` may see and manage ``schedule``."""
    return user.role is Role.PLATFORM_ADMIN or schedule.company_id == user.company_id


def schedulable_for(user: User) -> list[SchedulableJob]:
    """The calendar jobs ``user`` may schedule (the dashboard form's choices)."""
    if user.role is Role.PLATFORM_ADMIN:
        return list(SCHEDULABLE_JOBS)
    return [job for job in SCHEDULABLE_JOBS if job.company]


def schedule_out(schedule: Schedule, now: datetime) -> ScheduleOut:
    """The API form, with the next run computed at ``now``."""
    return ScheduleOut.read_from(
        schedule,
        # The timing fields (cron, every_s, time_zone, start, end) are the spec's.
        **asdict(schedule.spec),
        jobs=[job.as_json() for job in schedule.jobs],
        next_run_at=schedule.next_after(now),
    )


def _utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise field_error(name, "must include a time zone offset, such as +01:00 or Z")
    return moment.astimezone(UTC)


def spec_of(
    cron: str | None,
    every_s: int | None,
    time_zone: str,
    start: datetime | None,
    end: datetime | None,
) -> ScheduleSpec:
    """A validated spec; a problem answers 422 on the field it concerns, in words."""
    if cron is None and every_s is None:
        raise field_error(
            "cron", "give a cron expression or an interval: a schedule needs one of them"
        )
    if cron is not None and every_s is not None:
        raise field_error("cron", "give a cron expression or an interval, not both")
    if cron is not None and (problem := cron_problem(cron)) is not None:
        raise field_error("cron", problem)
    if (problem := zone_problem(time_zone)) is not None:
        raise field_error("time_zone", problem)
    first, last = _utc(start, "start"), _utc(end, "end")
    if first is not None and last is not None and last < first:
        raise field_error("end", "must not be before the start")
    try:
        return validate(ScheduleSpec(cron, every_s, time_zone, first, last))
    except ScheduleSpecError:  # every rule is checked above; this is a safety net
        raise field_error("cron", "this schedule cannot be stored") from None


def preview(body: SchedulePreviewIn, company: Company, now: datetime) -> SchedulePreviewOut:
    """The next runs after ``now`` of the timing ``body`` describes, as the schedule
    would have them (same rules, same cron code), without saving anything."""
    zone = body.time_zone or company.zone.key
    spec = spec_of(body.cron, body.every_s, zone, body.start, body.end)
    runs: list[RunPreviewOut] = []
    after = now
    while len(runs) < body.count and (at := next_run(spec, after)) is not None:
        runs.append(RunPreviewOut(at=at, local=_on_clock(at, spec.time_zone)))
        after = at
    return SchedulePreviewOut(time_zone=spec.time_zone, runs=runs)


def _on_clock(moment: datetime, zone: str) -> str:
    """``Mon 2026-11-30 08:00 CET``: a run as the schedule's admin planned it."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def jobs_of(
    bodies: list[ScheduledJobIn],
    user: User,
    company_id: str | None,
    job_types: JobTypes,
    today: date,
) -> tuple[ScheduledJob, ...]:
    """The jobs, checked against the job catalogue and what ``user`` may schedule.

    ``company_id`` is the schedule's company (``None``: a platform schedule). A
    company's schedule runs that company's AI jobs: ``companyId`` is set to it, for
    platform admins too, so a schedule listed under one company never works for another.
    """
    jobs = []
    for n, body in enumerate(bodies):
        try:
            job_type = job_types.get(body.queue, body.name)
        except UnknownJobTypeError:
            raise field_error(f"jobs.{n}.name", "not a job type of that queue") from None
        data: dict[str, Any] = dict(body.data)
        company_job = (body.queue, body.name) in COMPANY_JOBS
        if user.role is not Role.PLATFORM_ADMIN and not company_job:
            raise field_error(
                f"jobs.{n}.name",
                "company schedules may run AI briefings, forecasts, anomaly detection and insights",
            )
        if company_job and company_id is not None:
            data["companyId"] = company_id
        try:
            validate_payload(job_type, fill(data, today))
        except InvalidPayloadError as error:
            raise field_error(f"jobs.{n}.data", "; ".join(error.problems)) from None
        data.pop("type", None)
        jobs.append(ScheduledJob(body.queue, body.name, data))
    return tuple(jobs)


async def owner_of(session: AsyncSession, body: ScheduleIn, user: User, own: Company) -> Company:
    """The company a new schedule belongs to: the user's own, or for a platform admin
    the active company named by ``company_id`` (an unknown one is a 422)."""
    if body.company_id is None or body.company_id == own.id:
        return own
    if user.role is not Role.PLATFORM_ADMIN:
        raise field_error("company_id", "only platform admins make schedules of other companies")
    company = await session.scalar(
        select(Company).where(Company.id == body.company_id, Company.is_active.is_(True))
    )
    if company is None:
        raise field_error("company_id", "no active company has that id")
    return company


async def schedulable_companies(session: AsyncSession) -> list[Company]:
    """The active companies, by name: whom a platform admin may make a schedule for."""
    rows = await session.scalars(
        select(Company).where(Company.is_active.is_(True)).order_by(Company.name, Company.id)
    )
    return list(rows)


def new_schedule(
    schedule_id: str,
    body: ScheduleIn,
    user: User,
    company: Company,
    job_types: JobTypes,
    today: date,
) -> Schedule:
    """The schedule a create body describes, for ``company`` (see :func:`owner_of`)."""
    if body.company_wide and user.role is not Role.PLATFORM_ADMIN:
        raise field_error("company_wide", "only platform admins make platform schedules")
    spec = spec_of(
        body.cron, body.every_s, body.time_zone or company.zone.key, body.start, body.end
    )
    owner = None if body.company_wide else company.id
    return Schedule(
        id=schedule_id,
        name=body.name,
        spec=spec,
        jobs=jobs_of(body.jobs, user, owner, job_types, today),
        company_id=owner,
        catch_up=body.catch_up,
    )


def edited(
    schedule: Schedule,
    body: ScheduleEdit,
    user: User,
    job_types: JobTypes,
    today: date,
) -> Schedule:
    """``schedule`` with the body's changes (validated like a new one)."""
    spec = schedule.spec
    changes = body.model_fields_set
    cron = body.cron if "cron" in changes else spec.cron
    every_s = body.every_s if "every_s" in changes else spec.every_s
    if "cron" in changes and body.cron is not None and "every_s" not in changes:
        every_s = None
    if "every_s" in changes and body.every_s is not None and "cron" not in changes:
        cron = None
    new_spec = spec_of(
        cron,
        every_s,
        body.time_zone or spec.time_zone,
        body.start if "start" in changes else spec.start,
        body.end if "end" in changes else spec.end,
    )
    jobs = (
        jobs_of(body.jobs, user, schedule.company_id, job_types, today)
        if body.jobs is not None
        else schedule.jobs
    )
    return Schedule(
        id=schedule.id,
        name=body.name or schedule.name,
        spec=new_spec,
        jobs=jobs,
        company_id=schedule.company_id,
        builtin=schedule.builtin,
        catch_up=body.catch_up or schedule.catch_up,
        paused=schedule.paused,
    )
