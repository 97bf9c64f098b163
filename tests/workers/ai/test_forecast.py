"""Demand forecasts on synthetic histories of known structure (tests/workers/ai/synthetic.py).

Accuracy is judged the way forecasters do: against the seasonal naive forecast on
days the model has not seen (a 28-day holdout after each history), by MASE. Seeds are
fixed, so every run sees the same series. ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from ils.workers.ai.forecast import (
    DemandClass,
    FloatArray,
    Forecast,
    classify_demand,
    forecast_demand,
    mase,
    seasonal_naive,
    suggest_reorder,
)
from tests.workers.ai.synthetic import intermittent_demand, weekly_demand

HOLDOUT = 28
DAYS = 365
SERIES = 20


def smooth_series(seed: int) -> list[FloatArray]:
    """Lab weeks with a trend: levels 10-40 a day, -0.05% to +0.15% of it per day."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(SERIES):
        level = rng.uniform(10, 40)
        out.append(
            weekly_demand(
                rng,
                DAYS + HOLDOUT,
                level=level,
                trend_per_day=level * rng.uniform(-0.0005, 0.0015),
                start_weekday=int(rng.integers(7)),
            )
        )
    return out


@pytest.fixture(scope="module")
def smooth() -> list[tuple[FloatArray, FloatArray, Forecast]]:
    """(history, holdout, forecast) for each smooth series; fitted once per module."""
    return [
        (series[:DAYS], series[DAYS:], forecast_demand(series[:DAYS], HOLDOUT))
        for series in smooth_series(seed=2024)
    ]


def check_shape(forecast: Forecast, horizon: int) -> None:
    for array in (forecast.mean, forecast.lower, forecast.upper):
        assert array.shape == (horizon,)
        assert np.all(np.isfinite(array))
    assert np.all(forecast.lower >= 0)
    assert np.all(forecast.lower <= forecast.mean)
    assert np.all(forecast.mean <= forecast.upper)


# -- Smooth demand: Holt-Winters ---------------------------------------------------


def test_smooth_forecast_beats_seasonal_naive(
    smooth: list[tuple[FloatArray, FloatArray, Forecast]],
) -> None:
    ours = [mase(future, f.mean, history) for history, future, f in smooth]
    naive = [
        mase(future, seasonal_naive(history, HOLDOUT), history) for history, future, _ in smooth
    ]
    print(
        f"\nsmooth, {SERIES} series, {HOLDOUT}-day holdout: mean MASE ours "
        f"{np.mean(ours):.3f}, seasonal naive {np.mean(naive):.3f}"
    )
    assert {f.method for _, _, f in smooth} == {"holt-winters"}
    assert {f.demand_class for _, _, f in smooth} == {DemandClass.SMOOTH}
    assert np.mean(ours) < np.mean(naive)
    # Not a tie: a weekly model with a trend should win clearly on weekly data.
    assert np.mean(ours) < 0.9 * np.mean(naive)
    for _, _, forecast in smooth:
        check_shape(forecast, HOLDOUT)


def test_smooth_interval_coverage_is_sensible(
    smooth: list[tuple[FloatArray, FloatArray, Forecast]],
) -> None:
    inside = [
        (future >= f.lower) & (future <= f.upper) for _, future, f in smooth
    ]  # fmt: skip
    coverage = float(np.mean(inside))
    print(f"\nsmooth: the 90% bounds hold {100 * coverage:.1f}% of {SERIES * HOLDOUT} holdout days")
    assert 0.75 <= coverage <= 0.98
    widths = np.array([f.upper - f.lower for _, _, f in smooth])
    assert np.all(widths[:, :7] > 0)  # not degenerate on any weekday
    # Uncertainty grows with the horizon: the fourth week's bounds are wider.
    assert widths[:, 21:].mean() > widths[:, :7].mean()


def test_forecast_follows_the_weekly_pattern() -> None:
    """The quiet weekend of the lab week shows in the forecast on the right days."""
    history = weekly_demand(np.random.default_rng(5), DAYS, level=30, start_weekday=0)
    forecast = forecast_demand(history, 14)
    weekday = (DAYS + np.arange(14)) % 7  # history starts on a Monday
    weekend = forecast.mean[weekday >= 5]
    working = forecast.mean[weekday < 5]
    assert weekend.max() < 0.5 * working.min()


def test_forecast_is_deterministic_and_read_only() -> None:
    history = smooth_series(seed=3)[0][:DAYS]
    first = forecast_demand(history, 30)
    second = forecast_demand(history.copy(), 30)
    np.testing.assert_array_equal(first.mean, second.mean)
    np.testing.assert_array_equal(first.upper, second.upper)
    with pytest.raises(ValueError, match="read-only"):
        first.mean[0] = 1.0


def test_forecast_leaves_warning_filters_alone() -> None:
    """Convergence warnings are silenced inside the fit only, not for the process."""
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forecast_demand(np.r_[np.full(20, 3.0), np.full(20, 9.0)], 7)
        forecast_demand(smooth_series(seed=4)[0][:DAYS], 7)
    assert [str(w.message) for w in caught] == []
    assert warnings.filters == before


# -- Intermittent and lumpy demand: Croston-type ------------------------------------


def intermittent_set(seed: int, *, spread: float) -> list[FloatArray]:
    rng = np.random.default_rng(seed)
    return [
        intermittent_demand(
            rng, DAYS + HOLDOUT, probability=0.25, size_mean=3.0, size_spread=spread
        )
        for _ in range(SERIES)
    ]


@pytest.mark.parametrize(
    ("spread", "expected"), [(0.3, DemandClass.INTERMITTENT), (2.0, DemandClass.LUMPY)]
)
def test_intermittent_forecast_beats_seasonal_naive(spread: float, expected: DemandClass) -> None:
    series = intermittent_set(seed=7, spread=spread)
    long_run = intermittent_demand(
        np.random.default_rng(0), 200_000, probability=0.25, size_spread=spread
    )
    true_rate = float(np.mean(long_run))
    ours, naive, rates = [], [], []
    for whole in series:
        history, future = whole[:DAYS], whole[DAYS:]
        assert classify_demand(history) == expected
        forecast = forecast_demand(history, HOLDOUT)
        assert forecast.demand_class == expected
        assert forecast.method == "croston-sba"
        check_shape(forecast, HOLDOUT)
        ours.append(mase(future, forecast.mean, history))
        naive.append(mase(future, seasonal_naive(history, HOLDOUT), history))
        rates.append(float(np.mean(forecast.mean)))
    print(
        f"\n{expected.value}, {SERIES} series: mean MASE ours {np.mean(ours):.3f}, seasonal "
        f"naive {np.mean(naive):.3f}; forecast rate {np.mean(rates):.3f}/day, true {true_rate:.3f}"
    )
    assert np.mean(ours) < np.mean(naive)
    assert np.mean(rates) == pytest.approx(true_rate, rel=0.15)
    # One series' rate is an estimate from ~90 sales: loose bounds catch gross errors.
    assert all(0.4 * true_rate < r < 2.2 * true_rate for r in rates)


def test_intermittent_total_demand_is_closer_than_seasonal_naive() -> None:
    """What a stock plan needs: the total over the next four weeks."""
    ours, naive = [], []
    for whole in intermittent_set(seed=8, spread=0.3):
        history, future = whole[:DAYS], whole[DAYS:]
        ours.append(abs(forecast_demand(history, HOLDOUT).mean.sum() - future.sum()))
        naive.append(abs(seasonal_naive(history, HOLDOUT).sum() - future.sum()))
    assert np.mean(ours) < 0.75 * np.mean(naive)


def test_demand_that_stopped_switches_to_tsb_and_decays() -> None:
    alive = intermittent_demand(np.random.default_rng(9), 300, probability=0.3)
    before = forecast_demand(alive, 28)
    after = forecast_demand(np.r_[alive, np.zeros(60)], 28)
    assert before.method == "croston-sba"
    assert after.method == "tsb"
    assert after.mean.sum() < 0.05 * before.mean.sum()


def test_intermittent_weekday_profile_is_kept() -> None:
    """An item used by one Monday job: the forecast puts its demand on Mondays."""
    rng = np.random.default_rng(10)
    days = 364  # 52 weeks starting on a Monday, so the next day is a Monday too
    mondays = np.arange(days) % 7 == 0
    history = np.where(mondays, intermittent_demand(rng, days, probability=0.6), 0.0)
    forecast = forecast_demand(history, 14)
    assert forecast.demand_class in (DemandClass.INTERMITTENT, DemandClass.LUMPY)
    assert np.all(forecast.mean[[0, 7]] > 0)
    assert np.all(forecast.mean[np.arange(14) % 7 != 0] == 0)
    # Without the profile a random intermittent series keeps a flat forecast.
    flat = forecast_demand(intermittent_demand(rng, days, probability=0.25), 14)
    assert np.ptp(flat.mean) == 0


# -- Classification, zero and short histories ---------------------------------------


def test_classify_constructed_series() -> None:
    rng = np.random.default_rng(12)
    assert classify_demand(weekly_demand(rng, DAYS)) == DemandClass.SMOOTH
    erratic = intermittent_demand(rng, DAYS, probability=1.0, size_mean=3.0, size_spread=2.0)
    assert classify_demand(erratic) == DemandClass.ERRATIC
    assert classify_demand(intermittent_demand(rng, DAYS, probability=0.2)) == (
        DemandClass.INTERMITTENT
    )
    lumpy = intermittent_demand(rng, DAYS, probability=0.2, size_spread=2.0)
    assert classify_demand(lumpy) == DemandClass.LUMPY
    assert classify_demand(np.zeros(DAYS)) == DemandClass.NONE
    assert classify_demand(np.zeros(0)) == DemandClass.NONE


def test_zeros_before_the_first_sale_do_not_make_a_new_product_intermittent() -> None:
    launched = np.r_[np.zeros(250), weekly_demand(np.random.default_rng(13), 115)]
    assert classify_demand(launched) == DemandClass.SMOOTH
    assert forecast_demand(launched, 7).method == "holt-winters"


def test_all_zero_history_forecasts_zero() -> None:
    forecast = forecast_demand(np.zeros(DAYS), 30)
    assert forecast.demand_class == DemandClass.NONE
    assert forecast.method == "zero"
    for array in (forecast.mean, forecast.lower, forecast.upper):
        np.testing.assert_array_equal(array, np.zeros(30))
    reorder = suggest_reorder(forecast, on_hand=0, lead_time_days=5)
    assert (reorder.quantity, reorder.reorder_now, reorder.days_of_cover) == (0, False, None)


@pytest.mark.parametrize(
    ("days", "method"), [(1, "mean"), (6, "mean"), (10, "seasonal-naive"), (15, "seasonal-naive")]
)
def test_short_history_uses_a_named_fallback(days: int, method: str) -> None:
    history = weekly_demand(np.random.default_rng(14), days, level=20)
    forecast = forecast_demand(history, 10)
    assert forecast.method == method
    check_shape(forecast, 10)
    assert np.all(forecast.upper > forecast.mean)  # short history: never a zero-width band


def test_short_intermittent_history_uses_the_mean() -> None:
    history = np.array([0, 0, 4, 0, 0, 0, 0, 3, 0, 0], dtype=np.float64)
    forecast = forecast_demand(history, 7)
    assert forecast.method == "mean"
    np.testing.assert_allclose(forecast.mean, 7 / 8)  # from the first sale on


# -- Reorder ------------------------------------------------------------------------


def test_reorder_arithmetic_on_a_planted_forecast() -> None:
    """Mean 2 a day, margin 1 a day: 4 days need 8 + sqrt(4 x 1^2) = 10 units."""
    mean = np.full(10, 2.0)
    forecast = Forecast(DemandClass.SMOOTH, "test", mean, mean - 1, mean + 1, 0.9)
    reorder = suggest_reorder(forecast, on_hand=3, lead_time_days=3, review_days=1)
    assert reorder.order_up_to == 10
    assert reorder.quantity == 7
    assert reorder.reorder_now
    assert reorder.days_of_cover == pytest.approx(1.5)
    assert reorder.stockout_in_days == 2


def test_reorder_when_stock_runs_out_within_lead_time() -> None:
    history = weekly_demand(np.random.default_rng(15), DAYS, level=20)
    forecast = forecast_demand(history, 60)
    reorder = suggest_reorder(forecast, on_hand=25, lead_time_days=10)
    assert reorder.reorder_now
    assert reorder.quantity > 0
    assert reorder.quantity == reorder.order_up_to - 25
    assert reorder.order_up_to > forecast.mean[:17].sum()  # a safety margin on top
    assert reorder.order_up_to < forecast.upper[:17].sum()  # but not every day at its worst
    assert reorder.stockout_in_days is not None
    assert reorder.stockout_in_days <= 10
    assert reorder.days_of_cover is not None
    assert reorder.days_of_cover < 10


def test_no_reorder_with_stock_for_weeks() -> None:
    history = weekly_demand(np.random.default_rng(16), DAYS, level=20)
    forecast = forecast_demand(history, 90)
    stock = int(forecast.mean[:40].sum())
    reorder = suggest_reorder(forecast, on_hand=stock, lead_time_days=7)
    assert reorder.quantity == 0
    assert not reorder.reorder_now
    assert reorder.days_of_cover is not None
    assert 38 < reorder.days_of_cover <= 40
    assert reorder.stockout_in_days == math.floor(reorder.days_of_cover) + 1
    huge = suggest_reorder(forecast, on_hand=10 * stock, lead_time_days=7)
    assert (huge.quantity, huge.reorder_now) == (0, False)
    assert huge.days_of_cover is None  # lasts beyond the 90-day horizon
    assert huge.stockout_in_days is None


def test_reorder_for_intermittent_item_stays_moderate() -> None:
    """Daily margins add in quadrature: far below summing every day's upper bound."""
    history = intermittent_demand(np.random.default_rng(17), DAYS, probability=0.2)
    forecast = forecast_demand(history, 30)
    reorder = suggest_reorder(forecast, on_hand=0, lead_time_days=7)
    expected = forecast.mean[:14].sum()
    assert expected < reorder.order_up_to < 0.5 * forecast.upper[:14].sum()
    assert reorder.quantity == reorder.order_up_to


# -- Bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "kwargs", "message"),
    [
        (np.r_[np.ones(20), -1.0], {}, "negative"),
        (np.r_[np.ones(20), np.nan], {}, "NaN"),
        (np.r_[np.ones(20), np.inf], {}, "NaN or infinite"),
        (np.ones((20, 2)), {}, "1-D"),
        (np.ones(30), {"horizon": 0}, "horizon"),
        (np.ones(30), {"horizon": 366}, "horizon"),
        (np.ones(30), {"horizon": 2.5}, "integer"),
        (np.ones(30), {"season": 0}, "season"),
        (np.ones(30), {"level": 1.0}, "level"),
        (np.ones(30), {"level": 0.0}, "level"),
    ],
)
def test_bad_forecast_input_raises(
    history: FloatArray, kwargs: dict[str, float], message: str
) -> None:
    arguments: dict[str, float] = {"horizon": 7, **kwargs}
    horizon = arguments.pop("horizon")
    with pytest.raises(ValueError, match=message):
        forecast_demand(history, horizon, **arguments)  # type: ignore[arg-type]


def test_bad_input_to_the_other_functions_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        classify_demand(np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="needs 7 days"):
        seasonal_naive(np.ones(5), 7)
    with pytest.raises(ValueError, match="same non-zero length"):
        mase(np.ones(3), np.ones(4), np.ones(30))
    with pytest.raises(ValueError, match="more than 7 days"):
        mase(np.ones(3), np.ones(3), np.ones(7))
    forecast = forecast_demand(np.ones(30), 10)
    with pytest.raises(ValueError, match="horizon"):
        suggest_reorder(forecast, on_hand=5, lead_time_days=7, review_days=7)
    with pytest.raises(ValueError, match="negative"):
        suggest_reorder(forecast, on_hand=5, lead_time_days=-1)


# -- Benchmarks ---------------------------------------------------------------------


def test_seasonal_naive_and_mase_on_known_values() -> None:
    history = np.array([1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8], dtype=np.float64)
    np.testing.assert_array_equal(seasonal_naive(history, 9), [2, 3, 4, 5, 6, 7, 8, 2, 3])
    # In-sample seasonal naive is off by 1 every day; a forecast off by 2 scores 2.
    assert mase(np.full(3, 5.0), np.full(3, 7.0), history) == pytest.approx(2.0)
    assert mase(np.ones(3), np.ones(3), np.ones(10)) == 0.0
    assert mase(np.ones(3), np.zeros(3), np.ones(10)) == math.inf
