"""Failures of an AI job that retrying cannot fix: they fail the job at once.

A job can be valid as a payload and still ask for the impossible: a briefing of
0001-01-01 (the day before it does not exist, so reading its figures overflows) or a
period in the year 9999. Retried, such a job fails the same way on every attempt,
holds a slot of the rate-limited ``ai`` queue each time and ends with a reason
("date value out of range") that hides which job asked for what. So the days a job
names are checked first, and a date or number overflow anywhere in a handler is turned
into :class:`~ils.workers.ai.results.AIDataError`, which is permanent.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Final, ParamSpec, TypeVar

from ils.workers.ai.results import AIDataError

#: The days the platform holds data for; the API takes no day outside them either
#: (``ils.web.schemas.common.Day``), a job from another producer might.
EARLIEST_DAY: Final = date(1900, 1, 1)
LATEST_DAY: Final = date(2200, 12, 31)

P = ParamSpec("P")
R = TypeVar("R")


def job_day(text: str, field: str) -> date:
    """The day a job names (an ISO date, as the payload checked), within the years
    the platform holds data for.

    Raises:
        AIDataError: the day is outside them (permanent).
    """
    day = date.fromisoformat(text)
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise AIDataError(
            f"{field} {text} is outside {EARLIEST_DAY}..{LATEST_DAY}: no data can exist for it"
        )
    return day


def permanent_on_overflow(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a handler so that a date or number overflow fails its job for good.

    Only ``OverflowError``: the same input overflows on every attempt, whereas other
    errors (a database gone, a lock lost) may pass and are left to the retries.
    """

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except OverflowError as error:
            raise AIDataError(f"a date or number of the job is out of range ({error})") from error

    return run
