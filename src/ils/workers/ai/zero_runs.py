"""Runs of zero activity on trading days: eight days of GBP 0 invoiced is an anomaly.

The seasonal detector (:mod:`ils.workers.ai.anomaly`) compares each day with a
rolling median of its neighbours. A long enough run of zeros *is* most of its
neighbours, so the median drops to zero with it and the run looks normal: the
detector cannot see a business that stopped. This module looks for such runs
directly.

Trading days are Monday to Friday except the bank holidays of England and Wales
(:func:`is_trading_day`): labs and practices invoice and take orders on working
days, so a quiet Saturday, Sunday or bank holiday neither extends nor breaks a run,
while any activity on any day (a Saturday invoice) ends it. The bank holidays are
the regular ones computed by rule (New Year, Good Friday, Easter Monday, the May,
spring and summer Mondays, Christmas and Boxing Day with their substitute days);
one-off holidays (a jubilee, a coronation) and the Scottish and Northern Irish
calendars are not known and count as trading days, which :data:`MIN_ZERO_RUN`
allows for.

A run is flagged when it is also unlikely for this company: with ``p`` the share of
zero trading days before it, from the company's first activity on (smoothed,
``(zeros + 1) / (days + 2)``), a run of ``n``
has probability ``p ** n`` by chance, and its score is the normal quantile of that
probability (negative: a drop), compared with the detector's threshold. A company
that often has empty weekdays is not flagged for having more of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist
from typing import Final

import numpy as np

from ils.workers.ai.arrays import FloatArray

#: Monday to Friday (``date.weekday()``).
TRADING_WEEKDAYS: Final = frozenset(range(5))
#: Shortest run of zero trading days flagged: a full working week. With bank holidays
#: left out, the longest usual closure is between Christmas and New Year, at most three
#: trading days (29 to 31 Dec 2026), and a one-off holiday adds one: five is above
#: both, so closing for the holidays is no alarm, while a week of nothing is (the run of
#: GBP 0 invoiced that went unnoticed covered eight calendar days, six trading days).
MIN_ZERO_RUN: Final = 5
#: Trading days needed before a run to know the company is normally active (four
#: weeks): a company's first days are no anomaly.
MIN_HISTORY_DAYS: Final = 20
#: Smallest probability turned into a score (``p ** n`` underflows to zero).
_TINY_PROBABILITY: Final = 1e-300


@dataclass(frozen=True, slots=True)
class ZeroRun:
    """Consecutive trading days with a zero value (weekend days in between skipped).

    Attributes:
        start: The first zero trading day.
        end: The last zero trading day (the series' last trading day when still running).
        start_index: Position of ``start`` in the series.
        trading_days: How many trading days the run holds.
        expected_per_day: The median trading day before the run.
        score: Normal quantile of the chance of such a run (negative).
    """

    start: date
    end: date
    start_index: int
    trading_days: int
    expected_per_day: float
    score: float


def zero_runs(
    values: FloatArray, first_day: date, *, threshold: float, min_run: int = MIN_ZERO_RUN
) -> list[ZeroRun]:
    """Runs of at least ``min_run`` zero trading days whose score reaches ``threshold``.

    Args:
        values: A daily series, oldest first, its first value on ``first_day``.
        first_day: The date of ``values[0]``.
        threshold: Smallest absolute score flagged (the detector's threshold).
        min_run: Shortest run considered.
    """
    holidays = _holidays(first_day, len(values))
    runs: list[ZeroRun] = []
    start: int | None = None
    length = 0
    for index, value in enumerate(np.asarray(values, dtype=np.float64)):
        day = first_day + timedelta(days=index)
        if value != 0:
            if start is not None and length >= min_run:
                runs.append(_run(values, first_day, start, index - 1, length, holidays))
            start, length = None, 0
        elif is_trading_day(day, holidays):
            start = index if start is None else start
            length += 1
    if start is not None and length >= min_run:
        runs.append(_run(values, first_day, start, len(values) - 1, length, holidays))
    return [run for run in runs if -run.score >= threshold]


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` (Gregorian; the anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    week = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * week) // 451
    month, day = divmod(h + week - 7 * m + 114, 31)
    return date(year, month, day + 1)


def bank_holidays(year: int) -> frozenset[date]:
    """The regular bank holidays of England and Wales in ``year``."""

    def monday_on_or_after(day: date) -> date:
        return day + timedelta(days=-day.weekday() % 7)

    def last_monday(month: int) -> date:
        after = date(year + month // 12, month % 12 + 1, 1)
        last = after - timedelta(days=1)
        return last - timedelta(days=last.weekday())

    easter = easter_sunday(year)
    new_year = date(year, 1, 1)
    days = {
        new_year if new_year.weekday() < 5 else monday_on_or_after(new_year),
        easter - timedelta(days=2),
        easter + timedelta(days=1),
        monday_on_or_after(date(year, 5, 1)),
        last_monday(5),
        last_monday(8),
    }
    # Christmas and Boxing Day; one falling at a weekend moves to the next free weekday.
    for day in (date(year, 12, 25), date(year, 12, 26)):
        while day.weekday() >= 5 or day in days:
            day += timedelta(days=1)
        days.add(day)
    return frozenset(days)


def is_trading_day(day: date, holidays: frozenset[date] | None = None) -> bool:
    """A weekday that is not a (regular) bank holiday of England and Wales; ``holidays``
    when given are those bank holidays, computed once for a whole series."""
    known = bank_holidays(day.year) if holidays is None else holidays
    return day.weekday() in TRADING_WEEKDAYS and day not in known


def _holidays(first_day: date, days: int) -> frozenset[date]:
    last = first_day + timedelta(days=max(days - 1, 0))
    years = range(first_day.year, last.year + 1)
    return frozenset(day for year in years for day in bank_holidays(year))


def _trading_values(
    values: FloatArray, first_day: date, stop: int, holidays: frozenset[date]
) -> list[float]:
    return [
        float(values[i])
        for i in range(stop)
        if is_trading_day(first_day + timedelta(days=i), holidays)
    ]


def _run(
    values: FloatArray,
    first_day: date,
    start: int,
    last: int,
    length: int,
    holidays: frozenset[date],
) -> ZeroRun:
    """The run from ``start`` to the last trading day at or before ``last``, scored
    against the trading days before it (score 0 without enough of them)."""
    end = first_day + timedelta(days=last)
    while not is_trading_day(end, holidays):
        end -= timedelta(days=1)
    before = _trading_values(values, first_day, start, holidays)
    # Zeros before the company's first activity say nothing about its normal days.
    active = next((i for i, value in enumerate(before) if value != 0), len(before))
    before = before[active:]
    if len(before) < MIN_HISTORY_DAYS:
        score = 0.0
    else:
        zero_share = (sum(v == 0 for v in before) + 1) / (len(before) + 2)
        chance = max(math.exp(length * math.log(zero_share)), _TINY_PROBABILITY)
        score = NormalDist().inv_cdf(chance)
    expected = float(np.median(before)) if before else 0.0
    return ZeroRun(first_day + timedelta(days=start), end, start, length, expected, score)
