"""Robust anomaly detection on a business metric series (revenue, orders, units used).

The series is a company's metric per period, oldest first. A period is anomalous when
it is far from what the level of the business and the weekday pattern lead one to
expect. The baseline is built from medians only: the anomalies we look for would drag
a mean (or a least-squares fit) towards themselves and hide; a median ignores them as
long as they are fewer than half of the values it looks at.

The model, per period ``t`` of phase ``p = t mod season``:

* level ``L[t]``: the median of the deseasonalised neighbours of ``t`` (about two
  seasons of them), wide enough that a few anomalies cannot move it, narrow enough
  to follow a trend;
* seasonal factor ``S[p]``: the median over all cycles of the series relative to the
  level (an offset instead for series that can be zero or negative);
* expected ``E[t] = L[t] * S[p]`` (or ``L[t] + S[p]``).

The score is a robust z-score: the residual divided by a robust standard deviation,
the MAD of all residuals once they are made comparable (noise grows with the size of
a period), floored by Poisson noise for counts.

Everything is vectorised numpy: a two-year daily series takes about 2 ms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal

import numpy as np

from ils.workers.ai.arrays import FloatArray as FloatArray
from ils.workers.ai.arrays import finite_series

#: MAD to standard deviation for normal noise: the MAD of a normal distribution is
#: ``sigma * Phi^-1(0.75)``, so ``1 / Phi^-1(0.75) = 1.4826``.
_MAD_TO_SD: Final = 1 / NormalDist().inv_cdf(0.75)

#: The same for upper quantiles ``q`` of absolute deviations, ``sigma * Phi^-1((1+q)/2)``:
#: the fallback where over half the residuals are tied and the MAD is zero.
_UPPER_QUANTILES_TO_SD: Final[tuple[tuple[float, float], ...]] = tuple(
    (q, 1 / NormalDist().inv_cdf((1 + q) / 2)) for q in (0.75, 0.9, 0.95)
)

#: Mean absolute deviation to standard deviation for a normal distribution (sqrt(pi/2)):
#: the last fallback, non-zero as soon as a single residual differs, so a flat series
#: with one spike still has a scale (and the spike a large score).
_MEAN_ABS_DEV_TO_SD: Final = math.sqrt(math.pi / 2)

#: Groups of periods (by expected value) in which the spread of residuals is measured
#: to learn how noise grows with size, and the fewest periods in a group (a MAD of
#: fewer is too unsteady).
_NOISE_GROUPS: Final = 8
_NOISE_GROUP_SIZE: Final = 20

#: Sizes must span this much (log of the ratio of the largest group's to the
#: smallest's, here 1.5) before their spreads say anything about how noise grows.
_MIN_LOG_SIZE_RANGE: Final = math.log(1.5)

#: Full cycles needed to estimate a seasonal pattern by medians (the median of two
#: values is their mean, not robust).
_MIN_CYCLES_SEASON: Final = 3

#: Phases whose factor is below this share of the largest are left out of the level:
#: dividing a near-empty Sunday by its small factor turns its noise into wild levels.
_LEVEL_FACTOR_SHARE: Final = 0.25

#: Periods in the level window when there is no seasonality (weekly or monthly series).
_MIN_LEVEL_WINDOW: Final = 7

#: Smallest scale relative to the size of the series, so a perfectly flat series (zero
#: residuals, zero spread) divides zero by something and scores zero.
_TINY_RELATIVE_SCALE: Final = 1e-9

#: Share of whole numbers from which a non-negative series is taken as counts.
_COUNT_WHOLE_SHARE: Final = 0.9

#: Ratio from which a spike is described as "N times" the expected value, not "N% above".
_TIMES_FROM: Final = 2.0

_WEEKDAY_PREFIXES: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomalous period.

    Attributes:
        index: Position in the series.
        value: The observed value.
        expected: What the seasonal and level model expected for that period.
        score: Robust z-score ``(value - expected) / scale``, signed; the scale is the
            robust standard deviation of the noise expected at this period's size.
        direction: ``"spike"`` above the expected value, ``"drop"`` below it.
    """

    index: int
    value: float
    expected: float
    score: float
    direction: Literal["spike", "drop"]


def detect_anomalies(
    series: FloatArray, *, season: int = 7, threshold: float = 3.5, min_history: int = 21
) -> list[Anomaly]:
    """Find the periods whose value is far from the robust seasonal baseline.

    Args:
        series: Metric values per period, oldest first, contiguous.
        season: Periods per seasonal cycle (7 for daily data); ``<= 1`` for none.
        threshold: Smallest absolute robust z-score flagged. 3.5 is the usual cut for
            MAD-based scores (Iglewicz and Hoaglin): under normal noise a false alarm
            is about one period in 2,000. Real noise (and the error of the baseline)
            has heavier tails; on synthetic lab series it gives about one false
            alarm in two or three years of days.
        min_history: Periods before the first one that can be flagged; a detector
            needs history to know what normal looks like.

    Returns:
        The anomalies, sorted by index; ``[]`` for a series shorter than
        ``min_history``.

    Raises:
        ValueError: The series is not one-dimensional or holds NaN or infinities,
            the threshold is not positive, or ``min_history`` is negative.
    """
    values = finite_series(series, "series")
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a positive number, got {threshold}")
    if min_history < 0:
        raise ValueError(f"min_history must be >= 0, got {min_history}")
    if len(values) < max(min_history, 1):
        return []
    expected = _fit(values, season)
    scores = _scores(values, expected)
    flagged = np.flatnonzero(np.abs(scores) >= threshold)
    return [_anomaly(values, expected, scores, int(i)) for i in flagged if i >= min_history]


def expected_values(series: FloatArray, *, season: int = 7) -> FloatArray:
    """The robust baseline ``detect_anomalies`` compares each period with.

    Useful for charts (the band an anomaly left) and explanations.

    Raises:
        ValueError: The series is not one-dimensional or holds NaN or infinities.
    """
    values = finite_series(series, "series")
    if len(values) == 0:
        return values
    return _fit(values, season)


def describe(anomaly: Anomaly, *, metric: str, period: str, fmt: Callable[[float], str]) -> str:
    """One sentence for a person: what was seen, what was expected, how unusual.

    A ratio ("2.6 times") reads best for big spikes, a percentage for drops and
    moderate spikes; an absolute difference when the expected value is zero or
    negative, where ratios mean nothing.

    Args:
        anomaly: The anomaly to describe.
        metric: A human label of the metric, e.g. ``"Revenue"``.
        period: A label of the period, e.g. ``"Tue 3 Nov 2026"`` or
            ``"the week of 2 Nov 2026"``.
        fmt: Formats a value of the metric (currency, count with unit).
    """
    comparison = _comparison(anomaly, fmt)
    return (
        f"{metric} {_preposition(period)} {period} was {fmt(anomaly.value)}, "
        f"{comparison} (score {anomaly.score:.1f})."
    )


def _effective_season(length: int, season: int) -> int:
    """The season used: none when too few cycles to estimate it robustly."""
    return season if season > 1 and length >= _MIN_CYCLES_SEASON * season else 1


def _fit(values: FloatArray, season: int) -> FloatArray:
    """Expected values: multiplicative where it can be, additive otherwise.

    Business volumes scale: when an optical lab grows, its Mondays grow by more
    pounds than its Sundays, so the weekday pattern is a set of factors. A ratio to
    a zero or negative level means nothing, though, so series with negative values
    (a margin) or a level touching zero (most days without a sale) are additive.
    Choosing by a fit criterion instead was tried and is worse: the median residual
    is dominated by the busy days, where both fits are alike, and picking the
    additive fit then throws quiet days off by the whole error of the level.
    """
    season = _effective_season(len(values), season)
    window = _level_window(len(values), season)
    first_level = _rolling_median(values, _odd(season) if season > 1 else window)
    if np.any(values < 0) or np.any(first_level <= 0):
        return _fit_additive(values, season, window)
    return _fit_multiplicative(values, season, window, first_level)


def _fit_multiplicative(
    values: FloatArray, season: int, window: int, first_level: FloatArray
) -> FloatArray:
    """Level times a factor per phase, refined twice.

    The first level (a median over one cycle, whatever its mix of weekdays) only
    anchors the factors; the level is then re-estimated on the deseasonalised series
    over a wider window, and the factors again against it.
    """
    factors = _phase_medians(values / first_level, season)
    for _ in range(2):
        factors = factors / np.mean(factors)
        level = _deseasonalised_level(values, factors, season, window)
        factors = _phase_medians(values / level, season)
    return level * _tile(factors, season, len(values))


def _deseasonalised_level(
    values: FloatArray, factors: FloatArray, season: int, window: int
) -> FloatArray:
    per_period = _tile(factors, season, len(values))
    informative = per_period >= _LEVEL_FACTOR_SHARE * np.max(factors)
    deseasonalised = np.where(informative, values / np.where(informative, per_period, 1.0), np.nan)
    level = _rolling_median(deseasonalised, window)
    fallback = max(float(np.nanmedian(deseasonalised)), _TINY_RELATIVE_SCALE)
    level = np.where(np.isfinite(level) & (level > 0), level, fallback)
    return np.asarray(level, dtype=np.float64)


def _fit_additive(values: FloatArray, season: int, window: int) -> FloatArray:
    """Level plus an offset per phase, in two passes like the multiplicative fit."""
    level = _rolling_median(values, _odd(season) if season > 1 else window)
    offsets = _phase_medians(values - level, season)
    for _ in range(2):
        offsets = offsets - np.mean(offsets)
        level = _rolling_median(values - _tile(offsets, season, len(values)), window)
        offsets = _phase_medians(values - level, season)
    return level + _tile(offsets, season, len(values))


def _level_window(length: int, season: int) -> int:
    """About two cycles (odd, so the window is centred), capped by the series."""
    wanted = 2 * season + 1 if season > 1 else _MIN_LEVEL_WINDOW
    largest_odd = length if length % 2 else length - 1
    return max(1, min(wanted, largest_odd))


def _odd(n: int) -> int:
    return n if n % 2 else n + 1


def _rolling_median(values: FloatArray, window: int) -> FloatArray:
    """Median of the ``window`` periods around each period, leaving the period out.

    Leaving it out matters for the scale: a period inside the window pulls the
    median towards itself when it is ordinary but not when it is extreme, so its
    residual would shrink in the middle of the distribution and not in the tails,
    the MAD would come out too small and ordinary noise would raise alarms.

    The window is centred; at the ends it is the first or last full window. One
    shrunk towards the last period would hold little but the period itself, and
    today's anomaly (the one a company most wants to see) would explain itself
    away. NaN (periods left out of the level) are ignored.
    """
    length = len(values)
    window = min(window, length)
    if window <= 1:
        return values.copy()
    positions = np.arange(length)
    start = np.clip(positions - window // 2, 0, length - window)
    offsets = np.arange(window - 1)
    own = (positions - start)[:, None]
    neighbours = values[start[:, None] + offsets + (offsets >= own)]
    if not np.isnan(neighbours).any():
        return np.asarray(np.median(neighbours, axis=1), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window gives NaN
        return np.asarray(np.nanmedian(neighbours, axis=1), dtype=np.float64)


def _phase_medians(values: FloatArray, season: int) -> FloatArray:
    """Median per phase over all cycles; a single zero offset or unit factor if none."""
    if season <= 1:
        return np.array([float(np.median(values))])
    return np.array([float(np.median(values[p::season])) for p in range(season)])


def _tile(per_phase: FloatArray, season: int, length: int) -> FloatArray:
    if season <= 1:
        return np.full(length, per_phase[0])
    return np.asarray(per_phase[np.arange(length) % season], dtype=np.float64)


def _scores(values: FloatArray, expected: FloatArray) -> FloatArray:
    """Robust z-scores: each residual over the robust scale expected at its size.

    Noise grows with the size of a period (a Monday varies more in pounds than a
    Sunday, a grown business more than it did), so residuals are first divided by
    ``expected ** power`` (see ``_noise_power``), which makes them alike, and one
    scale is taken over all of them: a MAD over a whole year is steady, where a MAD
    per weekday (52 values) is easily off by a sixth and raises false alarms.
    """
    residual = values - expected
    size = _noise_size(expected, residual)
    scale = size * _robust_sd(residual / size)
    scale = np.maximum(scale, _count_floor(values, expected))
    scale = np.maximum(scale, _TINY_RELATIVE_SCALE * max(float(np.mean(np.abs(values))), 1.0))
    return np.asarray(residual / scale, dtype=np.float64)


def _noise_size(expected: FloatArray, residual: FloatArray) -> FloatArray:
    """``expected ** power``: what the noise of a period is proportional to.

    Where the baseline touches zero or below (additive fits of sparse or signed
    series) sizes mean nothing and the noise is taken as constant.
    """
    if np.any(expected <= 0):
        return np.ones_like(expected)
    power = _noise_power(expected, residual)
    return np.asarray(expected**power, dtype=np.float64)


def _noise_power(expected: FloatArray, residual: FloatArray) -> float:
    """How noise grows with size: 0 constant, 1/2 Poisson counts, 1 proportional.

    Periods are grouped by expected value (which, for daily data, mostly groups the
    weekdays) and the log of each group's robust spread is regressed on the log of
    its typical expected value. The slope is kept within [0, 1]; without a wide
    enough range of sizes to measure it, proportional noise is assumed (it is what
    multiplicative business series usually show, and the choice hardly matters
    when all sizes are alike).
    """
    groups = min(_NOISE_GROUPS, len(expected) // _NOISE_GROUP_SIZE)
    if groups < 2:
        return 1.0
    order = np.argsort(expected, kind="stable")
    sizes, spreads = [], []
    for chunk in np.array_split(order, groups):
        spread = _robust_sd(residual[chunk])
        if spread > 0:
            sizes.append(math.log(float(np.median(expected[chunk]))))
            spreads.append(math.log(spread))
    if len(sizes) < 2 or max(sizes) - min(sizes) < _MIN_LOG_SIZE_RANGE:
        return 1.0
    slope = float(np.polyfit(sizes, spreads, 1)[0])
    return min(max(slope, 0.0), 1.0)


def _robust_sd(residuals: FloatArray) -> float:
    """A standard deviation that the outliers themselves cannot inflate.

    The MAD times 1.4826 estimates the standard deviation of normal noise while
    ignoring up to half the values. When over half the residuals are tied (a zero
    MAD: a product sold one day in four, whose median day is a zero), the spread of
    the other values is read off upper quantiles of the deviations, scaled the same
    way; the largest is taken, since a quantile that barely clears the ties says
    nothing about the size of a sale. Then the mean absolute deviation, non-zero
    as soon as a single residual differs (a flat series with one spike); zero only
    when every residual is the same.
    """
    deviations = np.abs(residuals - np.median(residuals))
    mad = float(np.median(deviations))
    if mad > 0:
        return mad * _MAD_TO_SD
    upper = max(float(np.quantile(deviations, q)) * k for q, k in _UPPER_QUANTILES_TO_SD)
    if upper > 0:
        return upper
    return float(np.mean(deviations)) * _MEAN_ABS_DEV_TO_SD


def _count_floor(values: FloatArray, expected: FloatArray) -> FloatArray | float:
    """Poisson noise as the least spread of count data.

    A series of (mostly) whole non-negative numbers is taken as counts: orders,
    units, patients. A count with mean ``m`` varies by at least ``sqrt(m)``, so a
    quiet Sunday's tiny MAD does not turn 3 orders instead of 1 into an alarm. The
    mean is taken as at least one. "Mostly": a few corrected or prorated entries do
    not make a count series continuous.
    """
    whole = np.mean(values == np.round(values))
    if np.any(values < 0) or whole < _COUNT_WHOLE_SHARE:
        return 0.0
    return np.asarray(np.sqrt(np.maximum(expected, 1.0)), dtype=np.float64)


def _anomaly(values: FloatArray, expected: FloatArray, scores: FloatArray, index: int) -> Anomaly:
    score = float(scores[index])
    return Anomaly(
        index=index,
        value=float(values[index]),
        expected=float(expected[index]),
        score=score,
        direction="spike" if score > 0 else "drop",
    )


def _comparison(anomaly: Anomaly, fmt: Callable[[float], str]) -> str:
    value, expected = anomaly.value, anomaly.expected
    if expected <= 0 or value < 0:
        side = "above" if value >= expected else "below"
        return f"{fmt(abs(value - expected))} {side} the {fmt(expected)} expected"
    ratio = value / expected
    if ratio >= _TIMES_FROM:
        return f"{ratio:.1f} times the {fmt(expected)} expected"
    side = "above" if ratio >= 1 else "below"
    return f"{abs(ratio - 1) * 100:.0f}% {side} the {fmt(expected)} expected"


def _preposition(period: str) -> str:
    """The preposition of a period: on a day ("Tue 3 Nov 2026", "2026-11-03"), in a
    longer one ("the week of 2 Nov 2026", "November 2026")."""
    label = period.strip().lower()
    if label[:1].isdigit() or label.startswith(_WEEKDAY_PREFIXES):
        return "on"
    return "in"
