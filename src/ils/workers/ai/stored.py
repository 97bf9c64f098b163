"""Readers of stored AI results: anomalies found and the current demand forecast.

Chat answers and the daily briefing read what earlier jobs stored rather than
computing it again. Payloads are JSON written by our own jobs, but read defensively:
a field that is missing or of the wrong type leaves that item out instead of
failing the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company
from ils.domain.content import AIResult, AIResultKind
from ils.workers.ai.facts import Period


@dataclass(frozen=True, slots=True)
class AnomalyFact:
    """An anomaly the nightly scan stored: the day, the series and its explanation."""

    day: date
    metric: str
    direction: str
    score: float
    value: float | None
    expected: float | None
    explanation: str


async def anomalies(session: AsyncSession, company: Company, period: Period) -> list[AnomalyFact]:
    """Anomalies found for days of the period, the newest day first; a day and series
    stored by two runs counts once (the later run's)."""
    rows = await session.scalars(
        select(AIResult)
        .where(
            AIResult.company_id == company.id,
            AIResult.kind == AIResultKind.ANOMALY,
            AIResult.day >= period.start,
            AIResult.day <= period.end,
        )
        .order_by(AIResult.day.desc(), AIResult.created_at.desc())
    )
    seen: set[tuple[date | None, str | None]] = set()
    found = []
    for row in rows:
        if row.day is None or (row.day, row.period) in seen:
            continue
        seen.add((row.day, row.period))
        payload = row.payload if isinstance(row.payload, dict) else {}
        found.append(
            AnomalyFact(
                day=row.day,
                metric=str(payload.get("metric") or (row.period or "").split(":")[0]),
                direction=str(payload.get("direction") or ""),
                score=_number(payload.get("score")) or 0.0,
                value=_number(payload.get("value")),
                expected=_number(payload.get("expected")),
                explanation=str(payload.get("explanation") or ""),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class ProductForecast:
    """One product of a stored demand forecast: expected units and the reorder advice."""

    sku: str
    name: str
    mean: float
    lower: float | None
    upper: float | None
    on_hand: int | None
    stockout_in_days: float | None
    reorder_now: bool
    reorder_quantity: int


@dataclass(frozen=True, slots=True)
class ForecastFact:
    """The company's current demand forecast (the newest one stored)."""

    start_day: date | None
    days: int
    level: float | None
    products: tuple[ProductForecast, ...]


async def latest_forecast(session: AsyncSession, company: Company) -> ForecastFact | None:
    """The newest forecast stored for the company, ``None`` before the first run.
    Products the payload does not describe properly are left out rather than guessed."""
    payload = await session.scalar(
        select(AIResult.payload)
        .where(AIResult.company_id == company.id, AIResult.kind == AIResultKind.FORECAST)
        .order_by(AIResult.created_at.desc())
        .limit(1)
    )
    if not isinstance(payload, dict):
        return None
    products = payload.get("products")
    parsed = [_product_forecast(p) for p in products] if isinstance(products, list) else []
    try:
        start = date.fromisoformat(str(payload.get("startDay")))
    except ValueError:
        start = None
    return ForecastFact(
        start_day=start,
        days=int(_number(payload.get("forecastDays")) or 0),
        level=_number(payload.get("level")),
        products=tuple(p for p in parsed if p is not None),
    )


def _product_forecast(item: Any) -> ProductForecast | None:
    if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
        return None
    total = _mapping(item.get("total"))
    reorder = _mapping(item.get("reorder"))
    mean = _number(total.get("mean"))
    if mean is None:
        return None
    on_hand = _number(item.get("onHand"))
    return ProductForecast(
        sku=item["sku"],
        name=str(item.get("name") or item["sku"]),
        mean=mean,
        lower=_number(total.get("lower")),
        upper=_number(total.get("upper")),
        on_hand=None if on_hand is None else int(on_hand),
        stockout_in_days=_number(reorder.get("stockoutInDays")),
        reorder_now=reorder.get("reorderNow") is True,
        reorder_quantity=int(_number(reorder.get("quantity")) or 0),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """A JSON number as a float; ``None`` for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
