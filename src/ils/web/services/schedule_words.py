"""What is wrong with a schedule's timing, said so that a person can fix it.

The cron code (:mod:`ils.jobs.schedules.cron`) answers "invalid cron expression" and
repeats the value; the API's errors must not repeat values, and a person at the
dashboard's form needs to know which of the five parts is wrong and what it may be.
So each part is tried on its own (the others ``*``) with that same cron code, which
names the first bad part without a second cron parser to drift from the first.
"""

from __future__ import annotations

from typing import Final

from ils.jobs.schedules.cron import ScheduleSpec, ScheduleSpecError, validate

#: Each part of a cron expression: its name, what it may be, and a list, range and
#: step of its own for the examples.
CRON_PARTS: Final = (
    ("minute", "0 to 59", "0,30", "0-29", "*/15"),
    ("hour", "0 to 23", "8,12", "8-17", "*/2"),
    ("day of the month", "1 to 31", "1,15", "1-7", "*/2"),
    ("month", "1 to 12 or jan to dec", "1,7", "jan-mar", "*/3"),
    ("day of the week", "0 to 6 (0 and 7 are Sunday) or sun to sat", "sat,sun", "mon-fri", "*/2"),
)
ORDINALS: Final = ("1st", "2nd", "3rd", "4th", "5th")
WHAT_CRON_IS: Final = (
    "a cron expression is five parts separated by spaces: minute, hour, day of the month, "
    "month and day of the week, where * means every. For example 0 7 * * * runs every day "
    "at 07:00, 30 6 * * 1-5 on weekdays at 06:30 and */15 * * * * every 15 minutes"
)
ZONE_HELP: Final = (
    "is not a time zone this server knows: use an IANA name such as Europe/London, "
    "Europe/Berlin, America/New_York or UTC"
)


def _valid(cron: str) -> bool:
    try:
        validate(ScheduleSpec(cron=cron, every_s=None, time_zone="UTC"))
    except ScheduleSpecError:
        return False
    return True


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a schedule, in words (``None`` when it is one)."""
    parts = cron.split()
    if not parts:
        return f"is empty: {WHAT_CRON_IS}"
    if len(parts) != len(CRON_PARTS):
        count = f"{len(parts)} part" + ("" if len(parts) == 1 else "s")
        return f"has {count} instead of five: {WHAT_CRON_IS}"
    if _valid(" ".join(parts)):
        return None
    for n, (name, allowed, listed, ranged, step) in enumerate(CRON_PARTS):
        probe = ["*"] * len(CRON_PARTS)
        probe[n] = parts[n]
        if not _valid(" ".join(probe)):
            return (
                f"the {name} part (the {ORDINALS[n]}) must be {allowed}, * for every, "
                f"a list ({listed}), a range ({ranged}) or a step ({step}). "
                f"For example 0 7 * * * runs every day at 07:00"
            )
    return "never matches a date (such as the 31st of February): check the day and month parts"


def zone_problem(zone: str) -> str | None:
    """Why ``zone`` is not a time zone a schedule can run in (``None`` when it is)."""
    try:
        validate(ScheduleSpec(cron=None, every_s=60, time_zone=zone))
    except ScheduleSpecError:
        return ZONE_HELP
    return None
