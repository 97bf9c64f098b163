"""A company's metrics as series over its local calendar: days, weeks or months.

Anomaly detection and the demand forecasts need contiguous series (a zero for a day
without sales, not a missing row). Amounts are summed in the database by date where
the row carries a date (invoices, daily sales); timestamped rows (orders,
examinations) are read for the window and counted by the company's local day, which
is the same on SQLite and PostgreSQL and right across daylight-saving changes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, Literal

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ils.domain.billing import Invoice, InvoiceLine
from ils.domain.clinical import Examination
from ils.domain.companies import Company
from ils.domain.orders import Order
from ils.domain.supply import DailySale
from ils.workers.ai.arrays import FloatArray as FloatArray
from ils.workers.ai.facts import LINE_NET, Period, invoiced_in, orders_side

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
        by_day = await _count_by_day(
            session, company, period, Order.created_at, orders_side(company)
        )
    else:
        scope = Examination.company_id == company.id
        by_day = await _count_by_day(session, company, period, Examination.examined_at, scope)
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


async def _count_by_day(
    session: AsyncSession,
    company: Company,
    period: Period,
    moment: InstrumentedAttribute[datetime],
    scope: ColumnElement[bool],
) -> dict[date, float]:
    """Rows of ``scope`` whose ``moment`` falls in the period, counted by local day
    (the column is a ``UtcDateTime``: aware UTC values on both databases)."""
    first, after = period.utc_bounds(company)
    moments = await session.scalars(select(moment).where(scope, moment >= first, moment < after))
    counts: dict[date, float] = {}
    for at in moments:
        day = company.local_date(at)
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
