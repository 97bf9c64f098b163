"""The demand-forecast job: every stocked product's daily demand, ahead, with reorders.

1. Read the lab's products (those it holds stock of, or only ``productIds``) and
   their daily usage over the last ``forecast_history_days`` local days, up to
   yesterday (today is not over yet).
2. Fit and forecast in batches in the CPU pool (:func:`forecast_batch`), reporting
   progress after each batch: fitting hundreds of models is minutes of CPU that must
   not run on the event loop.
3. Store one ``forecast`` result (all products, with intervals and reorder
   suggestions) and tell the managers when something should be reordered now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company
from ils.domain.supply import DailySale, Product, StockLevel
from ils.workers.ai.facts import Period
from ils.workers.ai.forecast import MAX_HORIZON, forecast_demand, suggest_reorder
from ils.workers.ai.results import AIDataError

#: Decimals kept in stored forecasts: demand is in units, cents of a unit are noise.
DECIMALS: Final = 2
#: The prediction intervals stored with every forecast.
LEVEL: Final = 0.9
#: Days between stock reviews: a reorder must cover lead time plus this.
REVIEW_DAYS: Final = 7


@dataclass(frozen=True, slots=True)
class ProductHistory:
    """One product's inputs: what it is, what is on hand, and its daily usage."""

    product_id: str
    sku: str
    name: str
    on_hand: int
    lead_time_days: int
    history: list[float]


async def load_histories(
    session: AsyncSession,
    company: Company,
    history: Period,
    product_ids: Sequence[str] | None,
) -> list[ProductHistory]:
    """The company's stocked products (all, or ``product_ids``) with their usage.

    Raises:
        AIDataError: a requested product is not stocked by the company.
    """
    query = (
        select(StockLevel, Product)
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.company_id == company.id)
        .order_by(Product.sku)
    )
    if product_ids is not None:
        query = query.where(StockLevel.product_id.in_(product_ids))
    stocked = (await session.execute(query)).all()
    if product_ids is not None:
        missing = sorted(set(product_ids) - {level.product_id for level, _ in stocked})
        if missing:
            raise AIDataError(f"products {', '.join(missing)} are not stocked by the company")
    usage: dict[str, list[float]] = {level.product_id: [0.0] * history.days for level, _ in stocked}
    rows = await session.execute(
        select(DailySale.product_id, DailySale.day, DailySale.units).where(
            DailySale.company_id == company.id,
            DailySale.day >= history.start,
            DailySale.day <= history.end,
        )
    )
    for product_id, day, units in rows:
        series = usage.get(product_id)
        if series is not None:
            series[(day - history.start).days] = float(units)
    return [
        ProductHistory(
            product.id,
            product.sku,
            product.name,
            level.on_hand,
            product.lead_time_days,
            usage[level.product_id],
        )
        for level, product in stocked
    ]


def warm_up() -> None:
    """Import statsmodels' smoothing models in a fresh pool process, so the first
    forecast batch does not pay for it (and its timeout does not count it)."""
    forecast_demand(np.ones(28, dtype=np.float64), 7)


def _rounded(values: Any) -> list[float]:
    return [round(float(v), DECIMALS) for v in values]


def _total(mean: Any, upper: Any) -> dict[str, float]:
    """The bound of the horizon's total demand: the days' margins added in quadrature
    (independent days), as the reorder suggestion does; summing daily bounds would
    claim every day is a bad day at once."""
    total = float(np.sum(mean))
    margin = float(np.sqrt(np.sum((upper - mean) ** 2)))
    return {
        "mean": round(total, DECIMALS),
        "lower": round(max(total - margin, 0.0), DECIMALS),
        "upper": round(total + margin, DECIMALS),
    }


def forecast_batch(
    products: Sequence[ProductHistory], horizon: int, level: float = LEVEL
) -> list[dict[str, Any]]:
    """Forecast each product ``horizon`` days ahead (runs in a pool process).

    The model looks at least lead time + review period ahead, however short the
    requested horizon, because that is what a reorder suggestion needs; what is
    stored is cut to ``horizon``. Module-level and fed plain values, so it pickles;
    returns the JSON stored per product.
    """
    out: list[dict[str, Any]] = []
    for product in products:
        history = np.asarray(product.history, dtype=np.float64)
        lead = min(product.lead_time_days, MAX_HORIZON - REVIEW_DAYS)
        ahead = max(horizon, lead + REVIEW_DAYS)
        forecast = forecast_demand(history, ahead, level=level)
        reorder = suggest_reorder(forecast, product.on_hand, lead, review_days=REVIEW_DAYS)
        mean, upper = forecast.mean[:horizon], forecast.upper[:horizon]
        out.append(
            {
                "productId": product.product_id,
                "sku": product.sku,
                "name": product.name,
                "demandClass": forecast.demand_class.value,
                "method": forecast.method,
                "onHand": product.on_hand,
                "leadTimeDays": product.lead_time_days,
                "historyUnits": round(float(history.sum()), DECIMALS),
                "total": _total(mean, upper),
                "daily": {
                    "mean": _rounded(mean),
                    "lower": _rounded(forecast.lower[:horizon]),
                    "upper": _rounded(upper),
                },
                "reorder": {
                    "quantity": reorder.quantity,
                    "orderUpTo": reorder.order_up_to,
                    "daysOfCover": None
                    if reorder.days_of_cover is None
                    else round(reorder.days_of_cover, 1),
                    "stockoutInDays": reorder.stockout_in_days,
                    "reorderNow": reorder.reorder_now,
                },
            }
        )
    return out


def history_period(today: date, days: int) -> Period:
    """The ``days`` complete local days before ``today``."""
    return Period(today - timedelta(days=days), today - timedelta(days=1))


def forecast_payload(
    start: date, horizon: int, history: Period, products: list[dict[str, Any]]
) -> dict[str, Any]:
    """The stored result: all products, and the ones to reorder now first."""
    reorder = [p for p in products if p["reorder"]["reorderNow"]]
    return {
        "forecastDays": horizon,
        "startDay": start.isoformat(),
        "historyStart": history.start.isoformat(),
        "historyEnd": history.end.isoformat(),
        "level": LEVEL,
        "products": products,
        "reorderNow": [p["productId"] for p in reorder],
    }


def reorder_summary(products: list[dict[str, Any]]) -> str:
    """One sentence naming what to reorder now (for the notification)."""
    reorder = [p for p in products if p["reorder"]["reorderNow"]]
    named = "; ".join(
        f"{p['sku']} {p['name']}: order {p['reorder']['quantity']}"
        + (
            f" (runs out in about {p['reorder']['stockoutInDays']} days)"
            if p["reorder"]["stockoutInDays"] is not None
            else ""
        )
        for p in reorder[:5]
    )
    more = f"; and {len(reorder) - 5} more" if len(reorder) > 5 else ""
    return f"Reorder now: {named}{more}."
