"""What the schedule API may do for whom, and turning bodies into schedules.

* A platform admin sees and manages every schedule, platform-wide ones included, and
  may schedule any job type.
* An admin or company admin sees and manages their company's schedules, and may
  schedule only their company's AI jobs (briefing, forecast, anomalies, insights):
  ``companyId`` is set to their company. Any other job could name another company's
  users or records, and a schedule would run it without the checks of a request.
* Built-in schedules are made from the companies (``ils.workers.scheduled.builtins``):
  they may be paused, resumed and run now, but not edited or deleted (the next sync
  would put them back).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

from ils.domain.companies import Company, Role, User
from ils.errors import InvalidPayloadError, UnknownJobTypeError
from ils.jobs.schedules.cron import ScheduleSpec, ScheduleSpecError, validate
from ils.jobs.job_types import JobTypes, validate_payload
from ils.jobs.schedules.store import Schedule, ScheduledJob
from ils.web.schemas.schedules import ScheduledJobIn, ScheduleEdit, ScheduleIn, ScheduleOut
from ils.web.services.common import field_error
from ils.workers.scheduled.handlers import fill

#: What a company's own admins may schedule.
COMPANY_JOBS: Final = frozenset(
    {
        ("ai", "daily-briefing"),
        ("ai", "demand-forecast"),
        ("ai", "anomaly-detection"),
        ("ai", "insight-generation"),
    }
)


def sees(user: User, schedule: Schedule) -> bool:
    """Whether ``user`` may see and manage ``schedule``."""
    return user.role is Role.PLATFORM_ADMIN or schedule.company_id == user.company_id


def schedule_out(schedule: Schedule, now: datetime) -> ScheduleOut:
    """The API form, with the next run computed at ``now``."""
    spec = schedule.spec
    return ScheduleOut(
        id=schedule.id,
        name=schedule.name,
        company_id=schedule.company_id,
        builtin=schedule.builtin,
        cron=spec.cron,
        every_s=spec.every_s,
        time_zone=spec.time_zone,
        start=spec.start,
        end=spec.end,
        catch_up=schedule.catch_up,
        paused=schedule.paused,
        jobs=[job.as_json() for job in schedule.jobs],
        next_run_at=schedule.next_after(now),
        last_run_at=schedule.last_run_at,
    )


def _utc(moment: datetime | None, field: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise field_error(field, "must include a time zone offset")
    return moment.astimezone(UTC)


def spec_of(
    cron: str | None,
    every_s: int | None,
    time_zone: str,
    start: datetime | None,
    end: datetime | None,
) -> ScheduleSpec:
    """A validated spec; problems answer 422 on the field they concern."""
    if (cron is None) == (every_s is None):
        raise field_error("cron", "give either cron or every_s, not both or neither")
    spec = ScheduleSpec(cron, every_s, time_zone, _utc(start, "start"), _utc(end, "end"))
    try:
        return validate(spec)
    except ScheduleSpecError as error:
        message = str(error)
        field = next(
            (f for f in ("time_zone", "every_s", "end", "start") if f.split("_")[0] in message),
            "cron",
        )
        raise field_error(field, message) from None


def jobs_of(
    bodies: list[ScheduledJobIn], user: User, company: Company, job_types: JobTypes, today: date
) -> tuple[ScheduledJob, ...]:
    """The jobs, checked against the job catalogue and what ``user`` may schedule."""
    jobs = []
    for n, body in enumerate(bodies):
        try:
            job_type = job_types.get(body.queue, body.name)
        except UnknownJobTypeError:
            raise field_error(f"jobs.{n}.name", "not a job type of that queue") from None
        data: dict[str, Any] = dict(body.data)
        if user.role is not Role.PLATFORM_ADMIN:
            if (body.queue, body.name) not in COMPANY_JOBS:
                raise field_error(
                    f"jobs.{n}.name",
                    "company schedules may run AI briefings, forecasts, "
                    "anomaly detection and insights",
                )
            data["companyId"] = company.id
        try:
            validate_payload(job_type, fill(data, today))
        except InvalidPayloadError as error:
            raise field_error(f"jobs.{n}.data", "; ".join(error.problems)) from None
        data.pop("type", None)
        jobs.append(ScheduledJob(body.queue, body.name, data))
    return tuple(jobs)


def new_schedule(
    schedule_id: str,
    body: ScheduleIn,
    user: User,
    company: Company,
    job_types: JobTypes,
    today: date,
) -> Schedule:
    """The schedule a create body describes."""
    if body.company_wide and user.role is not Role.PLATFORM_ADMIN:
        raise field_error("company_wide", "only platform admins make platform schedules")
    spec = spec_of(
        body.cron, body.every_s, body.time_zone or company.zone.key, body.start, body.end
    )
    return Schedule(
        id=schedule_id,
        name=body.name,
        spec=spec,
        jobs=jobs_of(body.jobs, user, company, job_types, today),
        company_id=None if body.company_wide else company.id,
        catch_up=body.catch_up,
    )


def edited(
    schedule: Schedule,
    body: ScheduleEdit,
    user: User,
    company: Company,
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
        jobs_of(body.jobs, user, company, job_types, today)
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
