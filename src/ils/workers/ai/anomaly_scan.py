"""The anomaly-detection job's plan: which series to read, which periods to report.

``timeRange`` picks the grain: days (weekly seasonality removed), weeks or months
(no seasonality: a year of weeks is too little to learn a yearly pattern from). The
detector looks at a long history so it knows what normal is, but only the most
recent complete periods are reported: the nightly run reports yesterday, and the
days before it only if an earlier run missed them (results already stored for a
metric and period are not stored or announced twice).

Daily scans also look for runs of zero activity on trading days
(:mod:`~ils.workers.ai.zero_runs`), which the rolling baseline absorbs: a run still
going, or ended, in the reported days is one anomaly dated on its first day (so it
is stored once however long it lasts), and replaces what the seasonal detector
finds inside it and in the week after (a baseline dragged down by the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import numpy as np

from ils.workers.ai.anomaly import Anomaly, describe, detect_anomalies
from ils.workers.ai.facts import Period, money, short_date
from ils.workers.ai.series import (
    METRIC_LABELS,
    MONEY_METRICS,
    FloatArray,
    Granularity,
    Metric,
    aggregate,
    month_start,
    week_start,
)
from ils.workers.ai.zero_runs import ZeroRun, zero_runs

#: Days after a run of zero trading days in which the seasonal detector's findings are
#: dropped: its baseline is still dragged by the run (see :func:`find_recent`).
RUN_SHADOW: Final = 7


@dataclass(frozen=True, slots=True)
class Grain:
    """How one ``timeRange`` is scanned."""

    history_days: int
    report_periods: int
    season: int
    min_history: int


GRAINS: Final[dict[str, Grain]] = {
    # Half a year of days (26 weekly cycles); the last 7 days are reported.
    "daily": Grain(history_days=182, report_periods=7, season=7, min_history=28),
    # Two years of weeks; the last 4 complete weeks.
    "weekly": Grain(history_days=728, report_periods=4, season=1, min_history=12),
    # Three years of months; the last 3 complete months.
    "monthly": Grain(history_days=1096, report_periods=3, season=1, min_history=12),
}


def scan_window(today: date, granularity: Granularity) -> Period:
    """The history to read: complete periods only, ending before ``today``.

    A week or month still running would look like a drop, so weekly scans end on the
    last Sunday before today and monthly ones at the end of the previous month.
    """
    grain = GRAINS[granularity]
    end = today - timedelta(days=1)
    if granularity == "weekly":
        end = week_start(today) - timedelta(days=1)
    elif granularity == "monthly":
        end = month_start(today) - timedelta(days=1)
    start = end - timedelta(days=grain.history_days - 1)
    if granularity == "weekly":
        start = week_start(start + timedelta(days=6))
    elif granularity == "monthly":
        start = month_start(start.replace(day=28) + timedelta(days=4))
    return Period(start, end)


@dataclass(frozen=True, slots=True)
class Found:
    """An anomaly of a metric at a period start date, ready to store."""

    day: date
    anomaly: Anomaly
    explanation: str
    #: A run of zero trading days: its last day and length (``None`` otherwise).
    run_end: date | None = None
    trading_days: int | None = None

    def payload(self, metric: Metric, granularity: Granularity) -> dict[str, Any]:
        """The stored JSON (values in the metric's unit: cents for revenue)."""
        run = {}
        if self.run_end is not None:
            run = {"runEnd": self.run_end.isoformat(), "tradingDays": self.trading_days}
        return run | {
            "metric": metric,
            "timeRange": granularity,
            "period": self.day.isoformat(),
            "value": round(self.anomaly.value, 2),
            "expected": round(self.anomaly.expected, 2),
            "score": round(self.anomaly.score, 2),
            "direction": self.anomaly.direction,
            "explanation": self.explanation,
        }


def period_label(day: date, granularity: Granularity) -> str:
    """``Tue 3 Nov 2026``, ``the week of 2 Nov 2026`` or ``Nov 2026``."""
    if granularity == "weekly":
        return f"the week of {short_date(day)}"
    if granularity == "monthly":
        return f"{day:%B %Y}"
    return f"{day:%a} {short_date(day)}"


def value_format(metric: Metric) -> Callable[[float], str]:
    """How values of ``metric`` print: money for revenue, whole numbers otherwise."""
    if metric in MONEY_METRICS:
        return money
    return lambda value: f"{value:,.0f}"


def find_recent(
    daily: FloatArray,
    window: Period,
    metric: Metric,
    granularity: Granularity,
    threshold: float,
) -> list[Found]:
    """Anomalies in the last reported periods of the window's series."""
    grain = GRAINS[granularity]
    starts, values = aggregate(daily, window, granularity)
    first_reported = len(values) - grain.report_periods
    # A company's first sales are not anomalies: without enough periods with data
    # before the reported ones there is no normal to compare with.
    if np.count_nonzero(values[:first_reported]) < grain.min_history // 2:
        return []
    anomalies = detect_anomalies(
        values, season=grain.season, threshold=threshold, min_history=grain.min_history
    )
    fmt = value_format(metric)
    found = [
        Found(
            starts[a.index],
            a,
            describe(
                a,
                metric=METRIC_LABELS[metric],
                period=period_label(starts[a.index], granularity),
                fmt=fmt,
            ),
        )
        for a in anomalies
        if a.index >= first_reported
    ]
    if granularity != "daily":
        return found
    runs = [
        run
        for run in zero_runs(values, window.start, threshold=threshold)
        if (run.end - window.start).days >= first_reported
    ]
    # Around a run the seasonal baseline is the run's, not the business's: its days and
    # the week after (the level window reaches a week either side) read as drops, weekend
    # "spikes" over a negative expected value, and a recovery "spike". The run says it.
    shadow = {d for run in runs for d in _days(run.start, run.end + timedelta(days=RUN_SHADOW))}
    kept = [f for f in found if f.day not in shadow]
    return sorted(kept + [_run_found(run, metric) for run in runs], key=lambda f: f.day)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _run_found(run: ZeroRun, metric: Metric) -> Found:
    """A run of zero trading days as one anomaly: value 0 over the run, expected the
    usual trading day times its length."""
    expected = run.expected_per_day * run.trading_days
    anomaly = Anomaly(run.start_index, 0.0, expected, run.score, "drop")
    fmt = value_format(metric)
    text = (
        f"{METRIC_LABELS[metric]} was {fmt(0)} on each of {run.trading_days} trading days "
        f"(weekdays, bank holidays excepted) from {period_label(run.start, 'daily')} "
        f"to {period_label(run.end, 'daily')}; a trading day usually brings about "
        f"{fmt(run.expected_per_day)} "
        f"(score {run.score:.1f})."
    )
    return Found(run.start, anomaly, text, run.end, run.trading_days)
