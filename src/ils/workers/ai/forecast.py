"""Demand forecasts and reorder suggestions for one product, from its daily history.

Pure functions on numpy arrays: a history is the units used per day, oldest first,
one value per calendar day (0 on days without sales). ``forecast_demand`` first
classifies the series (Syntetos-Boylan-Croston), because the right model depends on
it: exponential smoothing for demand on most days, a Croston-type method for demand
on few days, a simple fallback when there is too little history to fit anything.
The models themselves live in ``demand_methods``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Final

import numpy as np

from ils.workers.ai.arrays import FloatArray, finite_series
from ils.workers.ai.demand_methods import (
    ModelForecast,
    croston_type,
    holt_winters,
    holt_winters_min_days,
    seasonal_repeat,
    short_history,
)

__all__ = [
    "DemandClass",
    "FloatArray",
    "Forecast",
    "Reorder",
    "classify_demand",
    "forecast_demand",
    "mase",
    "seasonal_naive",
    "suggest_reorder",
]

#: Average inter-demand interval above which demand counts as intermittent. 1.32 and
#: 0.49 are the cut-offs of Syntetos, Boylan and Croston (2005): where Croston-type
#: methods start beating exponential smoothing on mean squared error.
ADI_CUTOFF: Final = 1.32
#: Squared coefficient of variation of sale sizes above which sizes count as erratic.
CV2_CUTOFF: Final = 0.49
#: Only the last two years are classified and fitted: older sales say little about next
#: month, and the fit's cost grows with the series' length.
WINDOW_DAYS: Final = 730
MAX_HORIZON: Final = 365


class DemandClass(StrEnum):
    """Syntetos-Boylan-Croston demand classes, plus ``NONE`` for no sales at all.

    SMOOTH: sales most days, steady sizes. ERRATIC: sales most days, sizes vary a lot.
    INTERMITTENT: sales on few days, steady sizes. LUMPY: few days, varying sizes.
    """

    SMOOTH = "smooth"
    ERRATIC = "erratic"
    INTERMITTENT = "intermittent"
    LUMPY = "lumpy"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Forecast:
    """Daily demand forecast: point values and prediction bounds at ``level``.

    ``lower``/``upper`` bound each day's demand separately (mean +/- z x standard
    deviation of that day, clipped at 0), so ``upper - mean`` is that day's margin;
    margins of several days add in quadrature, as ``suggest_reorder`` does. The
    arrays are read-only.
    """

    demand_class: DemandClass
    method: str
    mean: FloatArray
    lower: FloatArray
    upper: FloatArray
    level: float


@dataclass(frozen=True, slots=True)
class Reorder:
    """What to order now, and how long the stock on hand lasts at the forecast mean."""

    quantity: int
    order_up_to: int
    days_of_cover: float | None
    stockout_in_days: int | None
    reorder_now: bool


# -- Validation ----------------------------------------------------------------------


def _checked_history(history: FloatArray) -> FloatArray:
    """The history as a 1-D float64 array, or ValueError saying what is wrong."""
    values = finite_series(history, "history", advice="; use 0 for days without sales")
    if np.any(values < 0):
        first = int(np.flatnonzero(values < 0)[0])
        raise ValueError(f"history must not be negative (day {first} is {values[first]})")
    return values


def _check_positive_int(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be between 1 and {maximum}, got {value}")


def _active(values: FloatArray) -> FloatArray:
    """The last ``WINDOW_DAYS`` days, from the first sale in them on.

    Zeros before a product's first sale say nothing about its demand (it was not
    listed yet); left in, they would make a new product look intermittent.
    """
    recent = values[-WINDOW_DAYS:]
    sold = np.flatnonzero(recent > 0)
    return recent[int(sold[0]) :] if len(sold) else recent[:0]


# -- Classification and forecasts ----------------------------------------------------


def classify_demand(history: FloatArray) -> DemandClass:
    """Classify by average inter-demand interval (ADI) and size variation (CV^2).

    ADI is the active days per day with a sale; CV^2 is the squared coefficient of
    variation of the non-zero sizes. The class picks the model: the cut-offs are where
    Croston-type methods beat exponential smoothing (see ``ADI_CUTOFF``).

    Raises:
        ValueError: the history is not 1-D, has NaN or negative values.
    """
    return _classify(_active(_checked_history(history)))


def _classify(active: FloatArray) -> DemandClass:
    sizes = active[active > 0]
    if len(sizes) == 0:
        return DemandClass.NONE
    adi = len(active) / len(sizes)
    cv2 = float(np.var(sizes)) / float(np.mean(sizes)) ** 2
    if adi <= ADI_CUTOFF:
        return DemandClass.SMOOTH if cv2 <= CV2_CUTOFF else DemandClass.ERRATIC
    return DemandClass.INTERMITTENT if cv2 <= CV2_CUTOFF else DemandClass.LUMPY


def forecast_demand(
    history: FloatArray, horizon: int, *, season: int = 7, level: float = 0.9
) -> Forecast:
    """Forecast the next ``horizon`` days of demand with bounds at ``level``.

    Methods by class: smooth and erratic -> ``"holt-winters"``; intermittent and
    lumpy -> ``"croston-sba"`` or ``"tsb"``; under two seasons since the first sale
    (16 days for a weekly season: Holt-Winters' start needs a little more than two
    weeks) -> ``"seasonal-naive"`` or ``"mean"``; no sales, or an empty history ->
    ``"zero"``. Histories longer than two years are cut to the last two.

    Raises:
        ValueError: bad history (see ``classify_demand``), ``horizon`` outside 1..365,
            ``season`` outside 1..365, or ``level`` not strictly between 0 and 1.
    """
    values = _checked_history(history)
    _check_positive_int("horizon", horizon, MAX_HORIZON)
    _check_positive_int("season", season, MAX_HORIZON)
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    active = _active(values)
    demand_class = _classify(active)
    if demand_class is DemandClass.NONE:
        zeros = np.zeros(horizon, dtype=np.float64)
        return _bounded(demand_class, ModelForecast("zero", zeros, zeros), level)
    return _bounded(demand_class, _model(demand_class, active, horizon, season), level)


def _model(
    demand_class: DemandClass, active: FloatArray, horizon: int, season: int
) -> ModelForecast:
    frequent = demand_class in (DemandClass.SMOOTH, DemandClass.ERRATIC)
    needed = holt_winters_min_days(season) if frequent else 2 * season
    if len(active) < needed:
        return short_history(active, horizon, season, seasonal=frequent)
    if frequent:
        return holt_winters(active, horizon, season)
    return croston_type(active, horizon, season)


def _bounded(demand_class: DemandClass, model: ModelForecast, level: float) -> Forecast:
    """Bounds mean +/- z x spread, everything clipped at 0 (demand is never negative)."""
    z = NormalDist().inv_cdf((1 + level) / 2)
    mean = np.maximum(model.mean, 0.0)
    lower = np.maximum(model.mean - z * model.spread, 0.0)
    upper = np.maximum(model.mean + z * model.spread, 0.0)
    for array in (mean, lower, upper):
        array.flags.writeable = False
    return Forecast(demand_class, model.method, mean, lower, upper, level)


# -- Benchmarks and scores -----------------------------------------------------------


def seasonal_naive(history: FloatArray, horizon: int, season: int = 7) -> FloatArray:
    """The last ``season`` days repeated: the benchmark any model must beat.

    Raises:
        ValueError: bad history, ``horizon`` outside 1..365, or fewer than ``season``
            days of history.
    """
    values = _checked_history(history)
    _check_positive_int("horizon", horizon, MAX_HORIZON)
    _check_positive_int("season", season, MAX_HORIZON)
    if len(values) < season:
        raise ValueError(f"seasonal naive needs {season} days of history, got {len(values)}")
    return seasonal_repeat(values, horizon, season)


def mase(actual: FloatArray, predicted: FloatArray, history: FloatArray, season: int = 7) -> float:
    """Mean absolute scaled error (Hyndman and Koehler, 2006).

    The forecast's mean absolute error divided by the in-sample mean absolute error
    of the seasonal naive forecast on ``history``. Unlike percentage errors it stays
    defined on days without sales, and below 1 means better than seasonal naive did
    in-sample, so it compares products of any volume. ``inf`` if the history never
    changes from one season to the next but the forecast misses.

    Raises:
        ValueError: ``actual`` and ``predicted`` differ in length or are empty, or the
            history has no more than ``season`` days.
    """
    values = _checked_history(history)
    real = np.asarray(actual, dtype=np.float64)
    guess = np.asarray(predicted, dtype=np.float64)
    if real.ndim != 1 or real.shape != guess.shape or len(real) == 0:
        raise ValueError(
            f"actual and predicted must be 1-D of the same non-zero length, "
            f"got {real.shape} and {guess.shape}"
        )
    if len(values) <= season:
        raise ValueError(f"MASE needs more than {season} days of history, got {len(values)}")
    error = float(np.mean(np.abs(real - guess)))
    scale = float(np.mean(np.abs(values[season:] - values[:-season])))
    if scale == 0:
        return 0.0 if error == 0 else math.inf
    return error / scale


# -- Reorder -------------------------------------------------------------------------


def suggest_reorder(
    forecast: Forecast, on_hand: int, lead_time_days: int, *, review_days: int = 7
) -> Reorder:
    """Order-up-to suggestion covering lead time plus review period at the upper bound.

    A periodic-review (R, S) policy: stock is looked at every ``review_days``, and an
    order placed now arrives after ``lead_time_days``, so what is on hand must last
    until the order after the next one arrives. The target ``order_up_to`` is the
    forecast demand over those days plus a safety margin: the days' margins
    (``upper - mean``) added in quadrature, i.e. the level-``forecast.level`` bound of
    the total assuming independent days. Summing the daily upper bounds instead would
    stock for every day being a bad day at once, several times what is needed for
    intermittent items. Pass the inventory position (on hand plus on order) as
    ``on_hand`` when orders are open; a negative value (backorders) is accepted.

    Raises:
        ValueError: negative lead or review days, both 0, or more days than the
            forecast covers.
    """
    if lead_time_days < 0 or review_days < 0:
        raise ValueError(
            f"lead_time_days and review_days must not be negative, "
            f"got {lead_time_days} and {review_days}"
        )
    covered = lead_time_days + review_days
    if not 1 <= covered <= len(forecast.mean):
        raise ValueError(
            f"lead time + review ({covered} days) must be between 1 and the forecast's "
            f"horizon ({len(forecast.mean)} days); forecast a longer horizon"
        )
    mean = forecast.mean[:covered]
    margin = forecast.upper[:covered] - mean
    needed = float(np.sum(mean) + np.sqrt(np.sum(margin**2)))
    order_up_to = math.ceil(needed - 1e-9)
    cover, stockout = _cover(forecast.mean, on_hand)
    return Reorder(
        quantity=max(0, order_up_to - on_hand),
        order_up_to=order_up_to,
        days_of_cover=cover,
        stockout_in_days=stockout,
        reorder_now=on_hand < order_up_to,
    )


def _cover(mean: FloatArray, on_hand: int) -> tuple[float | None, int | None]:
    """Days ``on_hand`` lasts at the mean (fractional), and the 1-based stockout day."""
    used = np.cumsum(mean)
    short = np.flatnonzero(used > on_hand)
    if len(short) == 0:
        return None, None
    day = int(short[0])
    before = float(used[day - 1]) if day > 0 else 0.0
    part = max(0.0, on_hand - before) / float(mean[day])
    return day + part, day + 1
