"""Runs of zero activity on trading days are anomalies; weekends and short closures not.

The series are built here day by day with their dates, so which days are weekdays
and how long a run is are counted by the test, not by the code under test.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import Invoice, InvoiceStatus
from ils.domain.companies import Company
from ils.workers.ai.anomaly_scan import find_recent, scan_window
from ils.workers.ai.facts import Period
from ils.workers.ai.series import daily_metric
from ils.workers.ai.zero_runs import MIN_ZERO_RUN, bank_holidays, is_trading_day, zero_runs
from tests.workers.ai.conftest import TODAY  # the demo's day, a Saturday

THRESHOLD = 3.5


def busy_weekdays(period: Period, seed: int = 7) -> dict[date, float]:
    """Revenue in cents: 150-250 GBP on weekdays, nothing at weekends."""
    rng = np.random.default_rng(seed)
    days = [period.start + timedelta(days=i) for i in range(period.days)]
    return {d: float(rng.integers(15_000, 25_000)) if d.weekday() < 5 else 0.0 for d in days}


def series(values: dict[date, float]) -> np.ndarray:
    return np.array([values[d] for d in sorted(values)], dtype=np.float64)


def zero_weekdays(values: dict[date, float], first: date, count: int) -> list[date]:
    """Set ``count`` weekdays from ``first`` on to zero; the weekdays zeroed."""
    zeroed, day = [], first
    while len(zeroed) < count:
        if day.weekday() < 5:
            values[day] = 0.0
            zeroed.append(day)
        day += timedelta(days=1)
    return zeroed


def test_eight_days_of_nothing_is_one_anomaly() -> None:
    """The case that went unnoticed: GBP 0 invoiced from Fri 20 to Fri 27 Nov, eight
    calendar days and six trading days, still going on the day of the scan."""
    window = scan_window(TODAY, "daily")
    values = busy_weekdays(window)
    zeroed = zero_weekdays(values, date(2026, 11, 20), 6)
    assert zeroed[-1] == date(2026, 11, 27) and (zeroed[-1] - zeroed[0]).days + 1 == 8
    found = find_recent(series(values), window, "revenue", "daily", THRESHOLD)
    runs = [f for f in found if f.trading_days is not None]
    assert len(runs) == 1
    run = runs[0]
    assert (run.day, run.run_end, run.trading_days) == (zeroed[0], zeroed[-1], 6)
    # One anomaly for the run, in place of anything the seasonal detector saw in it.
    assert [f.day for f in found if f.day >= zeroed[0]] == [zeroed[0]]
    assert run.anomaly.value == 0 and run.anomaly.direction == "drop"
    assert run.anomaly.score <= -THRESHOLD
    # Trading days before the run: weekdays but the summer bank holiday (31 Aug).
    weekdays_before = [
        v for d, v in values.items() if d < zeroed[0] and d.weekday() < 5 and d != date(2026, 8, 31)
    ]
    assert run.anomaly.expected == float(np.median(weekdays_before)) * 6
    assert "£0.00 on each of 6 trading days" in run.explanation
    assert "Fri 20 Nov 2026" in run.explanation and "Fri 27 Nov 2026" in run.explanation
    payload = run.payload("revenue", "daily")
    assert (payload["period"], payload["runEnd"], payload["tradingDays"]) == (
        "2026-11-20",
        "2026-11-27",
        6,
    )


def test_a_run_still_going_is_reported_once_dated_on_its_first_day() -> None:
    window = scan_window(TODAY, "daily")
    values = busy_weekdays(window)
    zeroed = zero_weekdays(values, date(2026, 11, 17), 9)  # to Fri 27 Nov, yesterday
    found = find_recent(series(values), window, "orders", "daily", THRESHOLD)
    assert [(f.day, f.run_end, f.trading_days) for f in found] == [(zeroed[0], zeroed[-1], 9)]


def test_weekends_neither_extend_nor_break_a_run_but_weekend_activity_does() -> None:
    start = date(2026, 6, 1)
    values = busy_weekdays(Period(start, date(2026, 8, 23)))
    zero_weekdays(values, date(2026, 8, 5), MIN_ZERO_RUN)  # Wed 5 to Tue 11 Aug
    runs = zero_runs(series(values), start, threshold=THRESHOLD)
    assert [(r.start, r.end, r.trading_days) for r in runs] == [
        (date(2026, 8, 5), date(2026, 8, 11), MIN_ZERO_RUN)
    ]
    values[date(2026, 8, 8)] = 5_000.0  # a Saturday sale splits it into 3 + 2
    assert zero_runs(series(values), start, threshold=THRESHOLD) == []


def test_bank_holidays_are_not_trading_days() -> None:
    """Tue 25 to Mon 31 Aug 2026 (the summer bank holiday) is four trading days; with
    Tue 1 Sep it is five, the holiday still not counted."""
    start = date(2026, 6, 1)
    values = busy_weekdays(Period(start, date(2026, 9, 20)))
    values[date(2026, 8, 31)] = 0.0  # closed on the bank holiday, as usual
    for day in (date(2026, 8, 25), date(2026, 8, 26), date(2026, 8, 27), date(2026, 8, 28)):
        values[day] = 0.0
    assert zero_runs(series(values), start, threshold=THRESHOLD) == []
    values[date(2026, 9, 1)] = 0.0
    runs = zero_runs(series(values), start, threshold=THRESHOLD)
    assert [(r.start, r.end, r.trading_days) for r in runs] == [
        (date(2026, 8, 25), date(2026, 9, 1), 5)
    ]
    assert not is_trading_day(date(2026, 8, 31)) and is_trading_day(date(2026, 9, 1))


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        # gov.uk's lists, one-off holidays (VE day 2020, the 2022 jubilee) aside.
        (2021, ["01-01", "04-02", "04-05", "05-03", "05-31", "08-30", "12-27", "12-28"]),
        (2026, ["01-01", "04-03", "04-06", "05-04", "05-25", "08-31", "12-25", "12-28"]),
        (2027, ["01-01", "03-26", "03-29", "05-03", "05-31", "08-30", "12-27", "12-28"]),
        (2028, ["01-03", "04-14", "04-17", "05-01", "05-29", "08-28", "12-25", "12-26"]),
    ],
)
def test_bank_holidays_of_england_and_wales(year: int, expected: list[str]) -> None:
    assert sorted(d.strftime("%m-%d") for d in bank_holidays(year)) == expected


def test_closing_between_christmas_and_new_year_is_not_flagged() -> None:
    """Closed from Thu 24 Dec 2026 to Sun 3 Jan 2027: with the bank holidays left out,
    three trading days (29 to 31 Dec), below the minimum."""
    start = date(2026, 9, 1)
    values = busy_weekdays(Period(start, date(2027, 1, 15)))
    day = date(2026, 12, 24)
    while day <= date(2027, 1, 3):
        values[day] = 0.0
        day += timedelta(days=1)
    runs = zero_runs(series(values), start, threshold=THRESHOLD, min_run=1)
    assert [(r.start, r.trading_days) for r in runs] == [(date(2026, 12, 24), 4)]
    assert zero_runs(series(values), start, threshold=THRESHOLD) == []


def test_a_company_often_idle_on_weekdays_is_not_flagged() -> None:
    start = date(2026, 6, 1)
    values = busy_weekdays(Period(start, date(2026, 9, 30)))
    weekdays = [d for d in sorted(values) if d.weekday() < 5]
    for day in weekdays[::2]:  # half its weekdays are empty anyway
        values[day] = 0.0
    zero_weekdays(values, date(2026, 9, 14), 8)
    assert zero_runs(series(values), start, threshold=THRESHOLD) == []


def test_a_new_company_has_no_history_to_compare_with() -> None:
    start = date(2026, 11, 2)
    values = busy_weekdays(Period(start, date(2026, 11, 27)))
    zero_weekdays(values, date(2026, 11, 16), 8)
    assert zero_runs(series(values), start, threshold=THRESHOLD) == []


async def test_the_demo_labs_days_without_invoices_are_found(
    session: AsyncSession, lab: Company
) -> None:
    """On the demo network the lab invoiced nothing after its last invoice: the daily
    revenue scan reports that run from the next trading day, its length counted here."""
    last = await session.scalar(
        select(func.max(Invoice.issued_on)).where(
            Invoice.company_id == lab.id, Invoice.status != InvoiceStatus.VOID
        )
    )
    assert last is not None
    first_day, yesterday = last + timedelta(days=1), TODAY - timedelta(days=1)
    days = [first_day + timedelta(days=i) for i in range((yesterday - first_day).days + 1)]
    trading = [d for d in days if d.weekday() < 5 and d not in bank_holidays(d.year)]
    window = scan_window(TODAY, "daily")
    daily = await daily_metric(session, lab, "revenue", window)
    runs = [
        f
        for f in find_recent(daily, window, "revenue", "daily", THRESHOLD)
        if f.trading_days is not None
    ]
    if len(trading) < MIN_ZERO_RUN:
        assert runs == []
    else:
        assert [(f.day, f.run_end, f.trading_days) for f in runs] == [
            (trading[0], trading[-1], len(trading))
        ]
