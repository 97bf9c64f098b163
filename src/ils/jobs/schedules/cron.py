"""When a schedule fires: cron in a company's own time zone, or a fixed interval.

A schedule is either a 5-field cron expression (``minute hour day-of-month month
day-of-week``, croniter syntax, no seconds field) read on the wall clock of an IANA
time zone, or an interval of ``every_s`` seconds. Both may be bounded by an aware
``start`` (no run before it) and ``end`` (no run after it). Every instant this module
takes or returns is an aware datetime; returned instants are in UTC.

The DST contract (the scheduler, the API and the tests rely on it):

* **Cron works on wall-clock slots.** A *slot* is a naive local date and time that the
  cron expression matches (croniter run on naive local datetimes, so croniter itself
  never sees a UTC offset). Each slot runs at most once, at the instant zoneinfo gives
  it with ``fold=0``:

  - *Spring-forward gap.* A slot that does not exist (01:30 on the day London jumps
    from 01:00 to 02:00) runs at the same distance after the gap starts: ``fold=0``
    reads it with the offset in force before the jump, so 01:30 GMT = 02:30 BST. It
    runs late by the length of the gap; it is never skipped, because a daily job that
    silently misses one day a year is worse than one that runs an hour late.
  - *Fall-back overlap.* A slot that happens twice (01:30 on the day London goes from
    02:00 BST back to 01:00 GMT) runs once, at its first occurrence (``fold=0``, 01:30
    BST). The second pass of the repeated hour runs nothing, so a job never runs twice
    for one slot.
  - *Coinciding slots run once.* A gap slot lands on the instant of the slot one gap
    length later when that slot exists too. Hourly ``0 * * * *`` on London's spring
    day: the 01:00 slot resolves to 01:00 GMT = 02:00 BST, the instant of the 02:00
    slot, so the schedule runs once then, and the day has **23** runs. On the autumn
    day (25 hours long) it has **24** runs, one per slot, with two hours between the
    01:00 BST run and the 02:00 GMT run. Whoever needs "every hour of elapsed time"
    uses an interval (``every_s=3600``) instead.
  - *The next run follows the slots, not the instants converted back.* "The first run
    strictly after ``t``" is the earliest resolved instant of any slot that is later
    than ``t``. Converting a run's UTC instant back to the local clock and asking cron
    for the next match would fire the repeated hour twice (01:30 BST, then 01:30 GMT);
    comparing resolved instants cannot: the second 01:30 resolves to the first, which is
    not after the run. Because a gap slot resolves later than the slots just after the
    gap (01:30 -> 02:30 BST, while 02:00 -> 02:00 BST), resolved instants are not
    monotonic in slot order near a gap; this module sorts them before answering.

* **Intervals are exact UTC durations**, counted from ``start`` (or from the Unix epoch
  when there is no start, so the runs of "every 15 minutes" fall on :00, :15, :30 and
  :45), and unaffected by DST.

* **An unknown time zone is an error** at validation, never silently UTC: a schedule
  that runs at the wrong hour for half the year is worse than a 422.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

from ils.errors import ILSError

MIN_EVERY_S = 60
"""The shortest interval, the same one-minute resolution as cron."""

_CRON_FIELDS = "minute hour day month weekday"
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VALIDATION_ORIGIN = datetime(2000, 1, 1)
_OFFSET_PROBES = (timedelta(hours=1), timedelta(hours=3), timedelta(days=1), timedelta(days=2))
"""How far back we look for a UTC offset change: covers 30-minute, 1-hour and 2-hour DST
shifts and day-long jumps (Samoa 2011) alike, as long as two changes of one zone are not
within two days of each other."""


class ScheduleSpecError(ILSError):
    """A schedule that cannot be stored: bad cron, unknown zone, bad bounds or interval.

    The message is meant for the API's 422 answer, so it says what to fix.
    """


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """When a schedule fires; exactly one of ``cron`` and ``every_s`` is set.

    Attributes:
        cron: 5-field cron expression (minute hour day-of-month month day-of-week,
            croniter syntax), read on the wall clock of ``time_zone``.
        every_s: Interval in whole seconds (at least 60), exact UTC durations.
        time_zone: IANA zone name such as ``"Europe/London"``; cron is read in it.
        start: Aware; no run before it, and intervals count from it.
        end: Aware; no run after it.
    """

    cron: str | None
    every_s: int | None
    time_zone: str
    start: datetime | None = None
    end: datetime | None = None


def validate(spec: ScheduleSpec) -> ScheduleSpec:
    """Check a schedule before it is stored, so a bad one is a 422 and not a silent no-op.

    Args:
        spec: The schedule as the caller gave it.

    Returns:
        The same schedule normalised: cron fields separated by single spaces, ``start``
        and ``end`` converted to UTC (the same instants).

    Raises:
        ScheduleSpecError: Both or neither of cron and every_s, a cron that is not 5
            valid fields or never matches a date, an interval under 60 s, an unknown
            time zone, a naive start or end, or an end before the start.
    """
    if (spec.cron is None) == (spec.every_s is None):
        raise ScheduleSpecError("exactly one of cron and every_s must be set")
    cron = _validate_cron(spec.cron) if spec.cron is not None else None
    if spec.every_s is not None:
        if isinstance(spec.every_s, bool) or not isinstance(spec.every_s, int):
            raise ScheduleSpecError("every_s must be a whole number of seconds")
        if spec.every_s < MIN_EVERY_S:
            raise ScheduleSpecError(f"every_s must be at least {MIN_EVERY_S} seconds")
    _zone(spec.time_zone)
    start = _aware_utc(spec.start, "start") if spec.start is not None else None
    end = _aware_utc(spec.end, "end") if spec.end is not None else None
    if start is not None and end is not None and end < start:
        raise ScheduleSpecError("end is before start")
    return ScheduleSpec(
        cron=cron, every_s=spec.every_s, time_zone=spec.time_zone, start=start, end=end
    )


def next_run(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first run strictly after ``after``, for the scheduler to sleep until.

    Passing a run's own instant gives the run after it, following wall-clock slots (see
    the module docstring), so the repeated hour of a fall-back day does not fire twice.

    Args:
        spec: The schedule; validated here, so a stored spec that went bad fails loudly.
        after: Aware instant; the answer is strictly later.

    Returns:
        Aware UTC instant, or None when the schedule has no run after ``after`` (past
        ``end``, or a cron that never matches again).

    Raises:
        ScheduleSpecError: The spec is invalid.
        ValueError: ``after`` is naive.
    """
    spec = validate(spec)
    lower = _effective_after(spec, _instant(after, "after"))
    if spec.every_s is not None:
        return _interval_next(spec, spec.every_s, lower)
    return next(_cron_runs(spec, lower), None)


def runs_between(
    spec: ScheduleSpec, start: datetime, end: datetime, limit: int = 10_000
) -> list[datetime]:
    """The runs in ``(start, end]``, oldest first: previews in the API, and the tests.

    Args:
        spec: The schedule.
        start: Aware, exclusive lower bound.
        end: Aware, inclusive upper bound.
        limit: At most this many runs, the earliest ones; keeps a preview of an
            every-minute cron over years from eating the server's memory.

    Returns:
        Strictly increasing aware UTC instants, also within the spec's own start and end.

    Raises:
        ScheduleSpecError: The spec is invalid.
        ValueError: ``start`` or ``end`` is naive.
    """
    spec = validate(spec)
    lower = _effective_after(spec, _instant(start, "start"))
    upper = _instant(end, "end")
    if spec.end is not None:
        upper = min(upper, spec.end)
    runs: list[datetime] = []
    if upper <= lower or limit <= 0:
        return runs
    if spec.every_s is not None:
        step = timedelta(seconds=spec.every_s)
        run = _interval_next(spec, spec.every_s, lower)
        while run is not None and run <= upper and len(runs) < limit:
            runs.append(run)
            run += step
        return runs
    for run in _cron_runs(spec, lower):
        if run > upper or len(runs) >= limit:
            break
        runs.append(run)
    return runs


def latest_run_at_or_before(spec: ScheduleSpec, moment: datetime) -> datetime | None:
    """The newest due time at or before ``moment``: what to catch up after an outage.

    Works backwards from ``moment`` (croniter's ``get_prev`` on local wall time, with the
    same slot resolution as :func:`next_run`), so the cost does not grow with the length
    of the outage: a year-long outage of an every-minute cron is a few steps, not half a
    million.

    Args:
        spec: The schedule.
        moment: Aware instant, usually "now".

    Returns:
        Aware UTC instant, or None when no run is due yet (``moment`` before ``start``
        or before the first slot croniter can find).

    Raises:
        ScheduleSpecError: The spec is invalid.
        ValueError: ``moment`` is naive.
    """
    spec = validate(spec)
    upper = _instant(moment, "moment")
    if spec.end is not None:
        upper = min(upper, spec.end)
    if spec.start is not None and upper < spec.start:
        return None
    if spec.every_s is not None:
        step = timedelta(seconds=spec.every_s)
        anchor = spec.start if spec.start is not None else _EPOCH
        return anchor + ((upper - anchor) // step) * step
    latest = _cron_latest(spec, upper)
    if latest is None or (spec.start is not None and latest < spec.start):
        return None
    return latest


# --- validation helpers ---------------------------------------------------------------


def _validate_cron(cron: str) -> str:
    """Normalise and check a cron expression; 5 fields only, so no seconds or years."""
    fields = cron.split()
    if len(fields) != 5:
        raise ScheduleSpecError(f"cron must have 5 fields: {_CRON_FIELDS}")
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise ScheduleSpecError(f"invalid cron expression {normalised!r}")
    try:
        croniter(normalised, _VALIDATION_ORIGIN).get_next(datetime)
    except CroniterBadDateError:
        # "0 0 31 2 *" parses but never fires; storing it would make a dead schedule.
        raise ScheduleSpecError(f"cron {normalised!r} never matches a date") from None
    return normalised


def _zone(name: str) -> ZoneInfo:
    """The zone, or a clear error: falling back to UTC would run at the wrong hour."""
    if not isinstance(name, str) or not name:
        raise ScheduleSpecError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: names that are not relative paths ("/etc/passwd", "../x").
        raise ScheduleSpecError(f"unknown time zone {name!r}") from None


def _aware_utc(value: datetime, name: str) -> datetime:
    """A spec bound in UTC; naive bounds are refused because their meaning is a guess."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ScheduleSpecError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _instant(value: datetime, name: str) -> datetime:
    """A caller's argument in UTC; a naive one is a programming error, not a bad spec."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _effective_after(spec: ScheduleSpec, after: datetime) -> datetime:
    """The exclusive lower bound once ``start`` (inclusive) is taken into account."""
    if spec.start is not None and after < spec.start:
        return spec.start - _MICROSECOND
    return after


# --- intervals --------------------------------------------------------------------------


def _interval_next(spec: ScheduleSpec, every_s: int, after: datetime) -> datetime | None:
    """First ``anchor + k * step`` after ``after``; integer timedelta maths, no floats."""
    step = timedelta(seconds=every_s)
    anchor = spec.start if spec.start is not None else _EPOCH
    run = anchor + ((after - anchor) // step + 1) * step
    if spec.end is not None and run > spec.end:
        return None
    return run


# --- cron on wall-clock slots -------------------------------------------------------------


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    """The zone's UTC offset at an instant."""
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always answers for an aware datetime
    return offset


def _offset_rise(zone: ZoneInfo, instant: datetime) -> timedelta:
    """How much the offset went up in the days before ``instant`` (a gap's length), or 0.

    A gap slot resolves one gap length after its wall time, so slots up to that much
    before an instant's wall time can still resolve after the instant.
    """
    now = _offset(zone, instant)
    return max([timedelta(0)] + [now - _offset(zone, instant - d) for d in _OFFSET_PROBES])


def _offset_drop(zone: ZoneInfo, instant: datetime) -> timedelta:
    """How much the offset went down in the days before ``instant`` (an overlap), or 0.

    During the second pass of a repeated hour, slots later on the wall clock than the
    instant resolve to their first pass, before it.
    """
    now = _offset(zone, instant)
    return max([timedelta(0)] + [_offset(zone, instant - d) - now for d in _OFFSET_PROBES])


def _wall(zone: ZoneInfo, instant: datetime) -> datetime:
    """The naive local wall time of an instant, as croniter wants it."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _resolve(zone: ZoneInfo, slot: datetime) -> tuple[datetime, bool]:
    """A wall slot's run instant (``fold=0``), and whether the slot exists on the clock.

    ``fold=0`` gives the first occurrence of an ambiguous time and, for a time inside a
    gap, reads it with the offset before the gap (01:30 GMT = 02:30 BST). A slot exists
    exactly when the instant reads back as the same wall time.
    """
    instant = slot.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return instant, _wall(zone, instant) == slot


def _cron_runs(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """The cron's runs strictly after ``after`` (and not after ``spec.end``), in order.

    Slots come from croniter in wall-clock order; an existing slot's instant is a barrier:
    every later slot, existing or in a gap, resolves later than it. So pending instants at
    or before the latest barrier are final and can be yielded in order; gap instants that
    resolve past it wait in a heap. Equal instants (a gap slot landing on a real slot)
    are yielded once.
    """
    assert spec.cron is not None
    zone = _zone(spec.time_zone)
    # A gap slot at most one gap length before after's wall time can resolve after it.
    origin = _wall(zone, after) - _offset_rise(zone, after)
    slots = croniter(spec.cron, origin)
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        try:
            slot: datetime = slots.get_next(datetime)
            instant, exists = _resolve(zone, slot)
        except (CroniterBadDateError, OverflowError):
            barrier = None  # no more slots: everything pending is final
        else:
            if instant > after:
                heapq.heappush(pending, instant)
            if not exists:
                continue
            barrier = instant
        while pending and (barrier is None or pending[0] <= barrier):
            run = heapq.heappop(pending)
            if spec.end is not None and run > spec.end:
                return
            if run != last:
                last = run
                yield run
        if barrier is None or (spec.end is not None and barrier > spec.end):
            return


def _cron_latest(spec: ScheduleSpec, moment: datetime) -> datetime | None:
    """The newest cron run at or before ``moment``, walking slots backwards.

    Starts at the latest wall time whose slot could resolve at or before ``moment``
    (past it by the overlap length during a repeated hour) and stops at the first
    existing slot that resolves at or before ``moment``, after looking one gap length
    further back: a gap slot there resolves later than its wall time and may be newer.
    """
    assert spec.cron is not None
    zone = _zone(spec.time_zone)
    ceiling = _wall(zone, moment) + _offset_drop(zone, moment)
    # get_prev is strictly before its origin; the ceiling itself may be a slot.
    slots = croniter(spec.cron, ceiling + _MICROSECOND)
    best: datetime | None = None
    floor: datetime | None = None
    while True:
        try:
            slot: datetime = slots.get_prev(datetime)
            instant, exists = _resolve(zone, slot)
        except (CroniterBadDateError, OverflowError):
            return best
        if floor is not None and slot < floor:
            return best
        if instant > moment:
            continue
        if best is None or instant > best:
            best = instant
        if exists and floor is None:
            floor = slot - _offset_rise(zone, instant)
            if floor == slot:
                return best
