"""Bodies and responses of the schedule management API (``/api/schedules``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from ils.web.schemas.common import InputModel, Line100, OutputModel

CronText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=9, max_length=120)]
ZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
JobKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]{0,63}$")]


class ScheduledJobIn(InputModel):
    """A job the schedule enqueues at each run; ``"{date}"`` in a data value becomes
    the run's local date. Company admins may schedule their company's AI jobs."""

    queue: JobKey
    name: JobKey
    data: dict[str, Any] = Field(default_factory=dict)


class ScheduleIn(InputModel):
    """A new schedule: a cron expression or an interval, in a time zone."""

    name: Line100
    cron: CronText | None = Field(
        default=None, description="minute hour day month weekday, in ``time_zone``"
    )
    every_s: int | None = Field(default=None, ge=60, le=366 * 86_400)
    time_zone: ZoneName | None = Field(
        default=None, description="IANA zone; the company's own when left out"
    )
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    catch_up: Literal["once", "skip"] = "once"
    jobs: list[ScheduledJobIn] = Field(min_length=1, max_length=10)
    company_wide: bool = Field(
        default=False,
        description="platform admins: a platform schedule of no company",
    )


class ScheduleEdit(InputModel):
    """Changes to a schedule; what is left out stays as it is."""

    name: Line100 | None = None
    cron: CronText | None = None
    every_s: int | None = Field(default=None, ge=60, le=366 * 86_400)
    time_zone: ZoneName | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    catch_up: Literal["once", "skip"] | None = None
    jobs: list[ScheduledJobIn] | None = Field(default=None, min_length=1, max_length=10)


class ScheduleOut(OutputModel):
    """A schedule, with its next run as computed now (``None`` when paused or ended)."""

    id: str
    name: str
    company_id: str | None
    builtin: str | None
    cron: str | None
    every_s: int | None
    time_zone: str
    start: dt.datetime | None
    end: dt.datetime | None
    catch_up: str
    paused: bool
    jobs: list[dict[str, Any]]
    next_run_at: dt.datetime | None
    last_run_at: dt.datetime | None
