"""A company's metrics as series over its local calendar: days, weeks or months.

Anomaly detection and the demand forecasts need contiguous series (a zero for a day
without sales, not a missing row). Amounts are summed in the database by date where
the row carries a date (invoices, daily sales); timestamped rows (orders,
examinations) are read for the window and counted by the company's local day, which
is the same on SQLite and PostgreSQL and right across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import Invoice, InvoiceLine
from ils.domain.clinical import Examination
from ils.domain.companies import Company
from ils.domain.orders import Order
from ils.domain.supply import DailySale
from ils.workers.ai.facts import LINE_NET, Period, invoiced_in, orders_side

FloatArray = npt.NDArray[np.float64]
Metric = Literal["revenue", "inventory", "orders", "patients"]
Granularity = Literal["daily", "weekly", "monthly"]

#: How each metric is named in sentences, and whether its values are money (cents).
METRIC_LABELS: Final = {
    "revenue": "Revenue invoiced",
    "inventory": "Units of stock used",
    "orders": "Orders",
    "patients": "Patients examined",
}
MONEY_METRICS: Final = frozenset({"revenue"})


async def daily_metric(
    session: AsyncSession, company: Company, metric: Metric, period: Period
) -> FloatArray:
    """One value per local day of ``period`` (oldest first); revenue in cents."""
    if metric == "revenue":
        by_day = await _revenue_by_day(session, company, period)
    elif metric == "inventory":
        by_day = await _units_by_day(session, company, period)
    elif metric == "orders":
        first, after = period.utc_bounds(company)
        moments = await session.scalars(
            select(Order.created_at).where(
                orders_side(company), Order.created_at >= first, Order.created_at < after
            )
        )
        by_day = _count_by_day(company, moments)
    else:
        first, after = period.utc_bounds(company)
        moments = await session.scalars(
            select(Examination.examined_at).where(
                Examination.company_id == company.id,
                Examination.examined_at >= first,
                Examination.examined_at < after,
            )
        )
        by_day = _count_by_day(company, moments)
    return _fill(by_day, period)


async def _revenue_by_day(
    session: AsyncSession, company: Company, period: Period
) -> dict[date, float]:
    rows = await session.execute(
        select(Invoice.issued_on, func.sum(LINE_NET))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*invoiced_in(company, period))
        .group_by(Invoice.issued_on)
    )
    return {day: float(total or 0) for day, total in rows}


async def _units_by_day(
    session: AsyncSession, company: Company, period: Period
) -> dict[date, float]:
    rows = await session.execute(
        select(DailySale.day, func.sum(DailySale.units))
        .where(
            DailySale.company_id == company.id,
            DailySale.day >= period.start,
            DailySale.day <= period.end,
        )
        .group_by(DailySale.day)
    )
    return {day: float(total or 0) for day, total in rows}


def _count_by_day(company: Company, moments: Iterable[datetime]) -> dict[date, float]:
    counts: dict[date, float] = {}
    for moment in moments:
        # SQLite hands back naive UTC datetimes; PostgreSQL aware ones.
        day = company.local_date(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        counts[day] = counts.get(day, 0.0) + 1.0
    return counts


def _fill(by_day: dict[date, float], period: Period) -> FloatArray:
    values = np.zeros(period.days, dtype=np.float64)
    for day, value in by_day.items():
        index = (day - period.start).days
        if 0 <= index < period.days:
            values[index] = value
    return values


# -- coarser periods ------------------------------------------------------------------


def week_start(day: date) -> date:
    """The Monday of ``day``'s week (ISO weeks)."""
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def bucket_starts(period: Period, granularity: Granularity) -> list[date]:
    """The first day of each day, week or month that ``period`` covers."""
    starts: list[date] = []
    day = period.start
    while day <= period.end:
        start = _bucket(day, granularity)
        if not starts or starts[-1] != start:
            starts.append(start)
        day += timedelta(days=1)
    return starts


def _bucket(day: date, granularity: Granularity) -> date:
    if granularity == "weekly":
        return week_start(day)
    if granularity == "monthly":
        return month_start(day)
    return day


def aggregate(
    daily: FloatArray, period: Period, granularity: Granularity
) -> tuple[list[date], FloatArray]:
    """Sum a daily series into weeks or months; returns the bucket starts and sums."""
    if granularity == "daily":
        return [period.start + timedelta(days=i) for i in range(period.days)], daily
    starts = bucket_starts(period, granularity)
    index = {start: i for i, start in enumerate(starts)}
    sums = np.zeros(len(starts), dtype=np.float64)
    for offset, value in enumerate(daily):
        day = period.start + timedelta(days=offset)
        sums[index[_bucket(day, granularity)]] += value
    return starts, sums
