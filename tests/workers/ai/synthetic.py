"""Synthetic daily histories with known structure, for the AI worker's tests and bench.

Each generator takes a numpy ``Generator`` so a test fixes its seed and gets the same
series every run. The structure is known by construction: weekly seasonality (a
factor per weekday), a linear trend, intermittent demand (a sale on a fraction of
days), and anomalies injected at recorded positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Monday..Sunday demand factors of an optical lab: busy early week, quiet weekend.
LAB_WEEK: tuple[float, ...] = (1.25, 1.15, 1.1, 1.05, 1.0, 0.35, 0.1)


def weekly_demand(
    rng: np.random.Generator,
    days: int,
    *,
    level: float = 20.0,
    trend_per_day: float = 0.0,
    week: tuple[float, ...] = LAB_WEEK,
    noise: float = 0.1,
    start_weekday: int = 0,
    counts: bool = True,
) -> FloatArray:
    """A smooth series: ``level`` x weekday factor x trend, with noise.

    ``noise`` is the relative standard deviation of a multiplicative normal error;
    with ``counts`` the result is drawn as Poisson counts around that mean (units
    sold are whole numbers), else it is the continuous value (revenue, say).
    """
    t = np.arange(days)
    factors = np.array(week)[(t + start_weekday) % len(week)]
    mean = np.maximum((level + trend_per_day * t) * factors, 0.0)
    mean = mean * np.maximum(rng.normal(1.0, noise, days), 0.0)
    if counts:
        return rng.poisson(mean).astype(np.float64)
    return mean.astype(np.float64)


def intermittent_demand(
    rng: np.random.Generator,
    days: int,
    *,
    probability: float = 0.2,
    size_mean: float = 3.0,
    size_spread: float = 0.3,
) -> FloatArray:
    """Demand on a fraction ``probability`` of days, sizes around ``size_mean``.

    A small ``size_spread`` (relative) gives intermittent demand; a large one
    (above about 0.7) gives lumpy demand in the Syntetos-Boylan sense.
    """
    occurs = rng.random(days) < probability
    sizes = np.maximum(np.round(rng.normal(size_mean, size_mean * size_spread, days)), 1.0)
    return np.where(occurs, sizes, 0.0).astype(np.float64)


@dataclass(frozen=True, slots=True)
class Injected:
    """A series with anomalies put in at known positions."""

    series: FloatArray
    positions: tuple[int, ...]


def inject_anomalies(
    rng: np.random.Generator,
    series: FloatArray,
    count: int,
    *,
    magnitude: float = 0.8,
    skip_first: int = 28,
    min_gap: int = 5,
) -> Injected:
    """Multiply ``count`` days by ``1 + magnitude`` (spike) or ``1 - magnitude`` (drop).

    Positions avoid the first ``skip_first`` days (a detector needs history first)
    and lie at least ``min_gap`` days apart, so each is a separate event. Spikes and
    drops alternate; a drop is only put on a day whose value is not already small,
    so every injected change is visible.
    """
    out = series.copy()
    median = float(np.median(series[series > 0])) if np.any(series > 0) else 0.0
    candidates = [i for i in range(skip_first, len(series)) if series[i] >= 0.5 * median]
    chosen: list[int] = []
    for index in rng.permutation(candidates):
        if all(abs(int(index) - other) >= min_gap for other in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    if len(chosen) < count:
        raise ValueError(f"cannot place {count} anomalies {min_gap} days apart")
    for n, index in enumerate(sorted(chosen)):
        out[index] = out[index] * (1 + magnitude if n % 2 == 0 else 1 - magnitude)
    return Injected(out, tuple(sorted(chosen)))
