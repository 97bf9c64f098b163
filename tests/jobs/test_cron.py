"""Schedules in a company's own time zone: DST neither skips nor doubles a run.

Expected instants are written out by hand from the 2026 tz rules (London changes on
29 March and 25 October, New York on 8 March and 1 November, Lord Howe moves by 30
minutes on 4 October), so a resolution that drifts by an hour fails. The property test
checks the invariants over random zones, crons and years.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from ils.errors import ILSError
from ils.jobs.schedules.cron import (
    ScheduleSpec,
    ScheduleSpecError,
    latest_run_at_or_before,
    next_run,
    runs_between,
    validate,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(
    zone: str, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0
) -> datetime:
    """An aware local time in ``zone`` (fold=1 picks the second pass of a repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)


def cron(expr: str, zone: str, **bounds: datetime) -> ScheduleSpec:
    return ScheduleSpec(cron=expr, every_s=None, time_zone=zone, **bounds)


def walls(runs: list[datetime], zone: str) -> list[str]:
    """Runs as local ISO strings with their offset, for readable failures."""
    return [run.astimezone(ZoneInfo(zone)).isoformat() for run in runs]


def chain(spec: ScheduleSpec, after: datetime, end: datetime) -> list[datetime]:
    """The runs found by feeding each run back into next_run, as the scheduler does."""
    runs: list[datetime] = []
    run = next_run(spec, after)
    while run is not None and run <= end:
        runs.append(run)
        run = next_run(spec, run)
    return runs


# --- daily jobs across both changes ---------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "change", "hours_on_change"),
    [
        (LONDON, date(2026, 3, 29), 23),
        (LONDON, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
    ],
)
def test_daily_0800_for_a_week_across_a_change(
    zone: str, change: date, hours_on_change: int
) -> None:
    tz = ZoneInfo(zone)
    first = change - timedelta(days=3)
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = start.replace(tzinfo=None) + timedelta(days=7)
    spec = cron("0 8 * * *", zone)

    runs = runs_between(spec, start, end.replace(tzinfo=tz))

    assert len(runs) == 7
    assert all(run.tzinfo is UTC for run in runs)
    locals_ = [run.astimezone(tz) for run in runs]
    assert [(t.hour, t.minute) for t in locals_] == [(8, 0)] * 7
    assert [t.date() for t in locals_] == [first + timedelta(days=i) for i in range(7)]
    gaps = [(b - a) / timedelta(hours=1) for a, b in pairwise(runs)]
    # 08:00 on the change day is 23 or 25 hours after 08:00 the day before.
    assert gaps == [24, 24, hours_on_change, 24, 24, 24]
    assert chain(spec, start, end.replace(tzinfo=tz)) == runs


# --- slots inside the gap and the overlap ---------------------------------------------


def test_london_0130_runs_late_by_the_gap_on_the_spring_day() -> None:
    spec = cron("30 1 * * *", LONDON)
    runs = runs_between(spec, utc(2026, 3, 27), utc(2026, 3, 31))
    assert walls(runs, LONDON) == [
        "2026-03-27T01:30:00+00:00",
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T02:30:00+01:00",  # 01:30 does not exist: 01:30 GMT = 02:30 BST
        "2026-03-30T01:30:00+01:00",
    ]
    assert runs[2] == utc(2026, 3, 29, 1, 30)
    assert next_run(spec, runs[1]) == runs[2]
    assert next_run(spec, runs[2]) == runs[3]
    # Asking from inside the shifted hour finds the shifted run, not tomorrow's.
    assert next_run(spec, utc(2026, 3, 29, 1, 0)) == runs[2]
    assert next_run(spec, utc(2026, 3, 29, 1, 29)) == runs[2]
    assert latest_run_at_or_before(spec, utc(2026, 3, 29, 1, 30)) == runs[2]
    assert latest_run_at_or_before(spec, utc(2026, 3, 29, 1, 29)) == runs[1]


def test_london_0130_runs_once_in_the_autumn_overlap() -> None:
    spec = cron("30 1 * * *", LONDON)
    runs = runs_between(spec, utc(2026, 10, 23), utc(2026, 10, 27))
    assert walls(runs, LONDON) == [
        "2026-10-23T01:30:00+01:00",
        "2026-10-24T01:30:00+01:00",
        "2026-10-25T01:30:00+01:00",  # the first 01:30 (00:30 UTC) ...
        "2026-10-26T01:30:00+00:00",  # ... and never the second (01:30 UTC)
    ]
    first_pass = utc(2026, 10, 25, 0, 30)
    assert runs[2] == first_pass
    assert next_run(spec, first_pass) == utc(2026, 10, 26, 1, 30)
    # Even asked from inside the second pass, before its 01:30, it does not run again.
    assert next_run(spec, local(LONDON, 2026, 10, 25, 1, 10, fold=1)) == utc(2026, 10, 26, 1, 30)
    assert latest_run_at_or_before(spec, utc(2026, 10, 25, 1, 45)) == first_pass


def test_new_york_0230_runs_late_by_the_gap_and_once_in_autumn() -> None:
    spec = cron("30 2 * * *", NEW_YORK)
    spring = runs_between(spec, utc(2026, 3, 7), utc(2026, 3, 10))
    assert walls(spring, NEW_YORK) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:30:00-04:00",  # 02:30 EST = 03:30 EDT
        "2026-03-09T02:30:00-04:00",
    ]
    assert [next_run(spec, run) for run in spring[:2]] == spring[1:]
    autumn = runs_between(spec, utc(2026, 10, 31), utc(2026, 11, 3))
    assert walls(autumn, NEW_YORK) == [
        "2026-10-31T02:30:00-04:00",
        "2026-11-01T02:30:00-05:00",  # 02:30 is after the repeated hour: happens once
        "2026-11-02T02:30:00-05:00",
    ]


def test_new_york_0130_runs_once_in_the_autumn_overlap() -> None:
    # New York repeats 01:00-02:00 (not 02:00-03:00), so this is its ambiguous slot.
    spec = cron("30 1 * * *", NEW_YORK)
    runs = runs_between(spec, utc(2026, 10, 31), utc(2026, 11, 3))
    assert walls(runs, NEW_YORK) == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    assert next_run(spec, runs[1]) == runs[2]


def test_hourly_london_has_23_runs_in_spring_and_24_in_autumn() -> None:
    """Wall slots run once: the 25-hour day still has 24 slots, the 23-hour day 23 runs."""
    spec = cron("0 * * * *", LONDON)
    tz = ZoneInfo(LONDON)

    def runs_on(day: date) -> list[datetime]:
        midnight = datetime.combine(day, datetime.min.time(), UTC)
        around = runs_between(spec, midnight - timedelta(days=1), midnight + timedelta(days=2))
        return [run for run in around if run.astimezone(tz).date() == day]

    spring = runs_on(date(2026, 3, 29))
    assert len(spring) == 23
    # 01:00 does not exist; it resolves to 01:00 GMT = 02:00 BST, the 02:00 slot's instant.
    assert walls(spring, LONDON)[:3] == [
        "2026-03-29T00:00:00+00:00",
        "2026-03-29T02:00:00+01:00",
        "2026-03-29T03:00:00+01:00",
    ]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(spring))

    autumn = runs_on(date(2026, 10, 25))
    assert len(autumn) == 24
    assert walls(autumn, LONDON)[:4] == [
        "2026-10-25T00:00:00+01:00",
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T02:00:00+00:00",  # the second 01:00 (01:00 GMT) did not run
        "2026-10-25T03:00:00+00:00",
    ]
    assert next_run(spec, utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 2)


def test_every_minute_is_silent_during_the_repeated_hour() -> None:
    spec = cron("* * * * *", LONDON)
    assert next_run(spec, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 0, 31)
    assert next_run(spec, utc(2026, 10, 25, 0, 59)) == utc(2026, 10, 25, 2, 0)
    assert next_run(spec, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 2, 0)
    # During the second pass, every wall minute up to 01:59 already ran in the first.
    assert latest_run_at_or_before(spec, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 0, 59)
    assert latest_run_at_or_before(spec, utc(2026, 10, 25, 2, 0)) == utc(2026, 10, 25, 2, 0)
    # Spring: the minutes of the missing hour land on the same instants as the next hour's.
    spring = runs_between(spec, utc(2026, 3, 29, 0, 58), utc(2026, 3, 29, 1, 2))
    assert spring == [utc(2026, 3, 29, 0, 59) + timedelta(minutes=i) for i in range(4)]


def test_gap_slot_resolving_past_a_later_slot_is_put_in_order() -> None:
    """Lord Howe jumps 02:00 -> 02:30: slot 02:20 resolves to 02:50, after slot 02:40."""
    tz = ZoneInfo(LORD_HOWE)
    assert local(LORD_HOWE, 2026, 10, 4, 1, 59).utcoffset() == timedelta(hours=10, minutes=30)
    assert local(LORD_HOWE, 2026, 10, 4, 2, 30).utcoffset() == timedelta(hours=11)
    spec = cron("20,40 2 * * *", LORD_HOWE)
    before = local(LORD_HOWE, 2026, 10, 4, 0, 0)
    runs = runs_between(spec, before, before + timedelta(hours=4))
    assert walls(runs, LORD_HOWE) == [
        "2026-10-04T02:40:00+11:00",
        "2026-10-04T02:50:00+11:00",  # the 02:20 slot, late by the 30-minute gap
    ]
    assert chain(spec, before, before + timedelta(hours=4)) == runs
    at_0245 = local(LORD_HOWE, 2026, 10, 4, 2, 45)
    assert latest_run_at_or_before(spec, at_0245) == runs[0]
    assert latest_run_at_or_before(spec, runs[1]) == runs[1]
    assert latest_run_at_or_before(spec, runs[1] + timedelta(hours=1)) == runs[1]
    assert next_run(spec, runs[0] - timedelta(minutes=1)) == runs[0]
    assert runs[0].astimezone(tz).date() == date(2026, 10, 4)


def test_a_skipped_day_runs_its_slot_on_the_next_day_once() -> None:
    """Samoa skipped 30 December 2011 (-10:00 to +14:00): a 24-hour gap, same rules."""
    apia = "Pacific/Apia"
    tz = ZoneInfo(apia)
    spec = cron("0 8,20 * * *", apia)
    runs = runs_between(spec, datetime(2011, 12, 29, tzinfo=tz), datetime(2012, 1, 1, tzinfo=tz))
    assert walls(runs, apia) == [
        "2011-12-29T08:00:00-10:00",
        "2011-12-29T20:00:00-10:00",
        "2011-12-31T08:00:00+14:00",  # also the 30th's 08:00 slot, 24 h late: once
        "2011-12-31T20:00:00+14:00",
    ]
    assert next_run(spec, datetime(2011, 12, 31, 7, tzinfo=tz)) == runs[2]
    assert latest_run_at_or_before(spec, datetime(2011, 12, 31, 19, tzinfo=tz)) == runs[2]


def test_two_slots_on_one_instant_run_once_and_chain_in_order() -> None:
    spec = cron("0,30 1-2 * * *", LONDON)
    after = utc(2026, 3, 28, 23)
    runs = runs_between(spec, after, utc(2026, 3, 29, 4))
    assert walls(runs, LONDON) == ["2026-03-29T02:00:00+01:00", "2026-03-29T02:30:00+01:00"]
    assert chain(spec, after, utc(2026, 3, 29, 4)) == runs


# --- intervals ------------------------------------------------------------------------


def test_interval_is_exact_utc_steps_across_dst() -> None:
    # In UTC: adding days to a London datetime is wall-clock arithmetic (47 h here).
    start = local(LONDON, 2026, 3, 28, 22, 0).astimezone(UTC)
    spec = ScheduleSpec(cron=None, every_s=90 * 60, time_zone=LONDON, start=start)
    runs = runs_between(spec, start - timedelta(hours=1), start + timedelta(days=2))
    assert runs[0] == start
    assert len(runs) == 33
    assert all(b - a == timedelta(minutes=90) for a, b in pairwise(runs))
    assert chain(spec, start - timedelta(hours=1), runs[-1]) == runs
    assert next_run(spec, start) == start + timedelta(minutes=90)
    assert next_run(spec, start + timedelta(minutes=1)) == start + timedelta(minutes=90)
    assert latest_run_at_or_before(spec, start + timedelta(minutes=179)) == runs[1]
    assert latest_run_at_or_before(spec, start - timedelta(seconds=1)) is None


def test_interval_without_start_counts_from_the_epoch() -> None:
    spec = ScheduleSpec(cron=None, every_s=15 * 60, time_zone=NEW_YORK)
    assert next_run(spec, utc(2026, 3, 8, 6, 59, 59)) == utc(2026, 3, 8, 7, 0)
    assert next_run(spec, utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 7, 15)
    assert latest_run_at_or_before(spec, utc(2026, 3, 8, 7, 14, 59)) == utc(2026, 3, 8, 7, 0)


# --- start and end --------------------------------------------------------------------


def test_start_and_end_bound_cron_runs() -> None:
    start = utc(2026, 5, 2, 7, 0)  # exactly the 08:00 BST run: included
    end = utc(2026, 5, 5, 7, 0)  # exactly a run: included
    spec = cron("0 8 * * *", LONDON, start=start, end=end)
    runs = runs_between(spec, utc(2026, 4, 1), utc(2026, 6, 1))
    assert runs == [utc(2026, 5, d, 7) for d in range(2, 6)]
    assert next_run(spec, utc(2020, 1, 1)) == start
    assert next_run(spec, utc(2026, 5, 4, 7)) == end
    assert next_run(spec, end) is None
    assert next_run(spec, utc(2030, 1, 1)) is None
    assert latest_run_at_or_before(spec, utc(2026, 5, 2, 6, 59)) is None
    assert latest_run_at_or_before(spec, utc(2030, 1, 1)) == end
    assert runs_between(spec, end, utc(2030, 1, 1)) == []


def test_start_and_end_bound_interval_runs() -> None:
    start = utc(2026, 1, 1, 0, 0, 30)
    end = utc(2026, 1, 1, 1, 0)
    spec = ScheduleSpec(cron=None, every_s=600, time_zone="UTC", start=start, end=end)
    runs = runs_between(spec, utc(2025, 1, 1), utc(2027, 1, 1))
    assert runs == [start + timedelta(minutes=10 * i) for i in range(6)]
    assert next_run(spec, runs[-1]) is None
    assert latest_run_at_or_before(spec, utc(2027, 1, 1)) == runs[-1]


def test_runs_between_limit_and_empty_window() -> None:
    spec = cron("* * * * *", "UTC")
    runs = runs_between(spec, utc(2026, 1, 1), utc(2027, 1, 1), limit=5)
    assert runs == [utc(2026, 1, 1, 0, i) for i in range(1, 6)]
    assert runs_between(spec, utc(2026, 1, 2), utc(2026, 1, 1)) == []


# --- catch-up after an outage ---------------------------------------------------------


def test_latest_run_after_a_three_day_outage_is_the_last_0800() -> None:
    spec = cron("0 8 * * *", LONDON)
    # Down from Friday 08:30 to Monday 12:00, over the spring change.
    assert latest_run_at_or_before(spec, utc(2026, 3, 30, 11)) == utc(2026, 3, 30, 7)
    assert latest_run_at_or_before(spec, utc(2026, 3, 30, 7)) == utc(2026, 3, 30, 7)
    assert latest_run_at_or_before(spec, utc(2026, 3, 30, 6, 59)) == utc(2026, 3, 29, 7)


def test_latest_run_of_every_minute_cron_after_a_year_is_fast() -> None:
    spec = cron("* * * * *", NEW_YORK, start=utc(2025, 3, 1))
    moment = utc(2026, 3, 8, 12, 34, 56, 789)
    began = time.perf_counter()
    latest = latest_run_at_or_before(spec, moment)
    elapsed = time.perf_counter() - began
    assert latest == utc(2026, 3, 8, 12, 34)
    assert elapsed < 0.05


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (cron("0 8 * *", LONDON), "cron must have 5 fields: minute hour day month weekday"),
        (cron("0 0 8 * * *", LONDON), "cron must have 5 fields"),
        (cron("@daily", LONDON), "cron must have 5 fields"),
        (cron("61 8 * * *", LONDON), "invalid cron expression '61 8 * * *'"),
        (cron("0 0 31 2 *", LONDON), "never matches a date"),
        (cron("0 8 * * *", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (cron("0 8 * * *", ""), "unknown time zone ''"),
        (cron("0 8 * * *", "../../etc/passwd"), "unknown time zone"),
        (ScheduleSpec(cron="0 8 * * *", every_s=60, time_zone=LONDON), "exactly one of"),
        (ScheduleSpec(cron=None, every_s=None, time_zone=LONDON), "exactly one of"),
        (ScheduleSpec(cron=None, every_s=59, time_zone=LONDON), "at least 60 seconds"),
        (ScheduleSpec(cron=None, every_s=True, time_zone=LONDON), "whole number"),
        (cron("0 8 * * *", LONDON, start=datetime(2026, 1, 1)), "start must be a timezone-aware"),
        (cron("0 8 * * *", LONDON, end=datetime(2026, 1, 1)), "end must be a timezone-aware"),
        (
            cron("0 8 * * *", LONDON, start=utc(2026, 2, 1), end=utc(2026, 1, 1)),
            "end is before start",
        ),
    ],
)
def test_validate_refuses_bad_specs(spec: ScheduleSpec, message: str) -> None:
    with pytest.raises(ScheduleSpecError, match=message.replace("*", r"\*")) as caught:
        validate(spec)
    assert isinstance(caught.value, ILSError)
    with pytest.raises(ScheduleSpecError):
        next_run(spec, utc(2026, 1, 1))


def test_validate_normalises_and_accepts_good_specs() -> None:
    start = local(LONDON, 2026, 6, 1, 9, 0)
    spec = cron("  0   8 * *  1-5 ", LONDON, start=start, end=start)
    checked = validate(spec)
    assert checked.cron == "0 8 * * 1-5"
    assert checked.start == start
    assert checked.start is not None
    assert checked.start.tzinfo is UTC
    assert validate(checked) == checked
    interval = ScheduleSpec(cron=None, every_s=60, time_zone="UTC")
    assert validate(interval) == interval


def test_naive_arguments_are_refused() -> None:
    spec = cron("0 8 * * *", LONDON)
    with pytest.raises(ValueError, match="after must be a timezone-aware"):
        next_run(spec, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="start must be a timezone-aware"):
        runs_between(spec, datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="moment must be a timezone-aware"):
        latest_run_at_or_before(spec, datetime(2026, 1, 1))


# --- properties -----------------------------------------------------------------------

DST_ZONES = [LONDON, NEW_YORK, LORD_HOWE, "Australia/Sydney", "America/Santiago", "UTC"]
DAILY_CRONS = ["0 8 * * *", "30 1 * * *", "30 2 * * *", "15 2 * * *", "0 0 * * *", "45 23 * * *"]
OTHER_CRONS = ["0 * * * *", "*/20 * * * *", "20,40 1-3 * * *", "15 3 * * 1-5", "0 0 1 * *"]


def offset_changes(zone: str, year: int) -> list[datetime]:
    """The instants (to the minute) at which the zone's UTC offset changes in ``year``."""
    tz = ZoneInfo(zone)

    def offset(instant: datetime) -> timedelta | None:
        return instant.astimezone(tz).utcoffset()

    changes = []
    day = utc(year, 1, 1)
    while day.year == year:
        low, high = day, day + timedelta(days=1)
        if offset(low) != offset(high):
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            changes.append(high)
        day += timedelta(days=1)
    return changes


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, datetime, datetime]:
    """A zone, a 10-day window start and a probe instant in the window.

    Most windows contain one of the zone's offset changes, with the probe within three
    hours of it: that is where a query from the middle of a gap or overlap goes wrong.
    """
    zone = draw(st.sampled_from(DST_ZONES))
    start = draw(
        st.datetimes(
            min_value=datetime(2020, 1, 1),
            max_value=datetime(2030, 12, 31),
            timezones=st.just(UTC),
        )
    )
    probe = start + draw(st.timedeltas(timedelta(0), timedelta(days=10)))
    changes = offset_changes(zone, start.year)
    if changes and draw(st.integers(0, 3)) > 0:
        change = draw(st.sampled_from(changes))
        probe = change + draw(st.timedeltas(timedelta(hours=-3), timedelta(hours=3)))
        start = probe - draw(st.timedeltas(timedelta(0), timedelta(days=10)))
    return zone, start, probe


@settings(max_examples=100, deadline=None)
@given(window=windows(), expr=st.sampled_from(DAILY_CRONS + OTHER_CRONS))
def test_runs_are_ordered_once_per_slot_and_daily_once_per_date(
    window: tuple[str, datetime, datetime], expr: str
) -> None:
    zone, start, probe = window
    tz = ZoneInfo(zone)
    spec = cron(expr, zone)
    end = start + timedelta(days=10)
    runs = runs_between(spec, start, end)

    assert all(start < run <= end for run in runs)
    assert all(a < b for a, b in pairwise(runs))
    local_walls = [run.astimezone(tz).replace(tzinfo=None) for run in runs]
    assert len(set(local_walls)) == len(local_walls)

    # Every slot croniter finds on the wall clock runs at its fold=0 instant, and
    # nothing else runs.
    slots = croniter(expr, start.astimezone(tz).replace(tzinfo=None) - timedelta(hours=2))
    expected: set[datetime] = set()
    while True:
        slot = slots.get_next(datetime)
        instant = slot.replace(tzinfo=tz).astimezone(UTC)
        if slot > end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=2):
            break
        if start < instant <= end:
            expected.add(instant)
    assert set(runs) == expected

    if expr in DAILY_CRONS:
        dates = [run.astimezone(tz).date() for run in runs]
        first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        inner = [first + timedelta(days=i) for i in range(1, (last - first).days)]
        assert [d for d in dates if first < d < last] == inner

    # The scheduler's view agrees: chaining next_run, and catching up from any run.
    first_runs = runs[:40]
    if first_runs:
        assert chain(spec, start, first_runs[-1]) == first_runs
    for run in runs[:5]:
        assert latest_run_at_or_before(spec, run) == run
        assert latest_run_at_or_before(spec, run + timedelta(seconds=59)) == run
    if runs:
        assert latest_run_at_or_before(spec, end) == runs[-1]
    # Asked from any instant (inside a gap, in the second pass of an overlap...), the
    # next and the latest run agree with the list.
    due = [run for run in runs if run <= probe]
    if due:
        assert latest_run_at_or_before(spec, probe) == due[-1]
    coming = [run for run in runs if run > probe]
    if coming:
        assert next_run(spec, probe) == coming[0]
