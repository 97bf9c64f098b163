"""Bodies and responses of the schedule management API (``/api/schedules``).

The cron text is only stripped and bounded here: whether it is a cron expression is
decided by :func:`ils.web.services.schedules.spec_of`, which answers in words a person
understands (what the five parts are, with examples) rather than pydantic's "String
should have at least 9 characters".
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from ils.web.schemas.common import InputModel, Line100, Moment, OutputModel

#: Schedules run at most once a minute, like cron.
MIN_EVERY_S = 60
MAX_EVERY_S = 366 * 86_400
PREVIEW_RUNS = 5


def _at_least_a_minute(seconds: int) -> int:
    """The interval rule in words (the form asks for minutes, the API for seconds)."""
    if seconds < MIN_EVERY_S:
        raise ValueError(
            "must be at least 60 seconds (one minute): schedules run at most once a minute"
        )
    return seconds


CronText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]
ZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
JobKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]{0,63}$")]
EverySeconds = Annotated[
    int,
    Field(le=MAX_EVERY_S, json_schema_extra={"minimum": MIN_EVERY_S}),
    AfterValidator(_at_least_a_minute),
]
CompanyId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


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
    every_s: EverySeconds | None = None
    time_zone: ZoneName | None = Field(
        default=None, description="IANA zone; the schedule's company's own when left out"
    )
    start: Moment | None = None
    end: Moment | None = None
    catch_up: Literal["once", "skip"] = "once"
    jobs: list[ScheduledJobIn] = Field(min_length=1, max_length=10)
    company_wide: bool = Field(
        default=False,
        description="platform admins: a platform schedule of no company",
    )
    company_id: CompanyId | None = Field(
        default=None,
        description="platform admins: the company whose schedule it is (your own when "
        "left out); its AI jobs are that company's",
    )


class ScheduleEdit(InputModel):
    """Changes to a schedule; what is left out stays as it is."""

    name: Line100 | None = None
    cron: CronText | None = None
    every_s: EverySeconds | None = None
    time_zone: ZoneName | None = None
    start: Moment | None = None
    end: Moment | None = None
    catch_up: Literal["once", "skip"] | None = None
    jobs: list[ScheduledJobIn] | None = Field(default=None, min_length=1, max_length=10)


class SchedulePreviewIn(InputModel):
    """When a schedule would run, asked before saving it: the same timing fields as
    :class:`ScheduleIn`, checked by the same rules."""

    cron: CronText | None = None
    every_s: EverySeconds | None = None
    time_zone: ZoneName | None = Field(
        default=None, description="IANA zone; your company's own when left out"
    )
    start: Moment | None = None
    end: Moment | None = None
    count: int = Field(default=PREVIEW_RUNS, ge=1, le=20, description="How many runs to show.")


class RunPreviewOut(OutputModel):
    """One coming run: the instant, and the wall-clock time in the schedule's zone."""

    at: dt.datetime = Field(description="The run's instant, in UTC.")
    local: str = Field(description="The run on the schedule zone's clock, for reading.")


class SchedulePreviewOut(OutputModel):
    """The next runs after now (fewer when the schedule ends sooner)."""

    time_zone: str
    runs: list[RunPreviewOut]


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
