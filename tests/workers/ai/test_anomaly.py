"""Anomaly detection on synthetic lab series with known anomalies.

The series come from ``synthetic``: weekly lab seasonality (busy Monday, near-empty
Sunday), trends, Poisson counts or continuous revenue, and anomalies injected at
recorded positions, so precision and recall are measured against the truth.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from ils.workers.ai.anomaly import (
    Anomaly,
    FloatArray,
    describe,
    detect_anomalies,
    expected_values,
)
from tests.workers.ai.synthetic import (
    LAB_WEEK,
    Injected,
    inject_anomalies,
    intermittent_demand,
    weekly_demand,
)

DAYS = 365
SERIES = 30
INJECTED = 6


def _lab_series(seed: int) -> list[FloatArray]:
    """``SERIES`` years of daily data: half counts, half revenue, at varied levels.

    Counts (orders, units) run from 50 to 300 a day with trends up or down; revenue
    from £500 to £3,000 a day, some tripling over the year. Each starts on a random
    weekday, so the weekly pattern is not aligned with the index.
    """
    rng = np.random.default_rng(seed)
    series = []
    for n in range(SERIES):
        weekday = int(rng.integers(7))
        if n % 2 == 0:
            level = float(rng.uniform(50, 300))
            trend = float(rng.uniform(-0.05, 0.2))
            series.append(
                weekly_demand(rng, DAYS, level=level, trend_per_day=trend, start_weekday=weekday)
            )
        else:
            level = float(rng.uniform(500, 3000))
            trend = float(rng.uniform(-1.0, 3.0))
            series.append(
                weekly_demand(
                    rng, DAYS, level=level, trend_per_day=trend, start_weekday=weekday, counts=False
                )
            )
    return series


def _injected(seed: int) -> list[tuple[FloatArray, Injected]]:
    rng = np.random.default_rng(seed + 1000)
    return [
        (clean, inject_anomalies(rng, clean, INJECTED, magnitude=0.8))
        for clean in _lab_series(seed)
    ]


def test_precision_and_recall_on_injected_anomalies() -> None:
    found_true = found_false = missed = 0
    for _, injected in _injected(seed=1):
        found = {a.index for a in detect_anomalies(injected.series)}
        truth = set(injected.positions)
        found_true += len(found & truth)
        found_false += len(found - truth)
        missed += len(truth - found)
    precision = found_true / (found_true + found_false)
    recall = found_true / (found_true + missed)
    print(f"precision {precision:.3f} recall {recall:.3f} ({SERIES} series x {INJECTED} anomalies)")
    assert precision >= 0.9
    assert recall >= 0.85


def test_clean_series_give_few_false_alarms() -> None:
    alarms = sum(len(detect_anomalies(series)) for series in _lab_series(seed=2))
    per_year = alarms / SERIES * 365 / DAYS
    print(f"false alarms per series per 365 days {per_year:.2f}")
    assert per_year < 1.0


def test_expected_value_of_a_found_anomaly_is_close_to_the_uninjected_value() -> None:
    errors = []
    for clean, injected in _injected(seed=3):
        for anomaly in detect_anomalies(injected.series):
            if anomaly.index in injected.positions:
                uninjected = clean[anomaly.index]
                # Far closer to the uninjected value than the observed one is (the
                # injected change is 80% of it).
                assert abs(anomaly.expected - uninjected) < 0.5 * abs(anomaly.value - uninjected)
                errors.append(abs(anomaly.expected / uninjected - 1))
    # The uninjected value carries its own noise (10% and Poisson), about 9% on
    # average, so that is about the least error a baseline can have.
    print(f"expected vs uninjected: median error {np.median(errors):.3f}, max {max(errors):.3f}")
    assert np.median(errors) < 0.15


def test_anomalies_carry_direction_score_and_are_sorted() -> None:
    _, injected = _injected(seed=4)[0]
    anomalies = detect_anomalies(injected.series)
    assert [a.index for a in anomalies] == sorted(a.index for a in anomalies)
    for anomaly in anomalies:
        assert anomaly.value == injected.series[anomaly.index]
        assert abs(anomaly.score) >= 3.5
        assert (anomaly.direction == "spike") == (anomaly.value > anomaly.expected)
        assert (anomaly.direction == "spike") == (anomaly.score > 0)


# --- weekly seasonality ---------------------------------------------------------


def _lab_counts(seed: int = 7, days: int = DAYS) -> FloatArray:
    """A lab's orders: starting on a Monday, so ``index % 7 == 6`` is a Sunday."""
    return weekly_demand(np.random.default_rng(seed), days, level=100.0)


@pytest.mark.parametrize("seed", range(10))
def test_quiet_sundays_and_busy_mondays_are_not_anomalies(seed: int) -> None:
    anomalies = detect_anomalies(_lab_counts(seed))
    assert not [a for a in anomalies if a.index % 7 == 6 and a.direction == "drop"]
    assert not [a for a in anomalies if a.index % 7 == 0 and a.direction == "spike"]


def test_expected_values_follow_the_weekday_pattern() -> None:
    expected = expected_values(_lab_counts())
    for weekday, factor in enumerate(LAB_WEEK):
        typical = float(np.median(expected[weekday::7]))
        assert typical == pytest.approx(100.0 * factor, rel=0.15)


def test_a_normal_sunday_with_few_orders_is_not_a_drop() -> None:
    series = _lab_counts()
    sunday = 13 * 7 + 6
    series[sunday] = 6.0  # 10 expected: Poisson noise, not an event
    assert sunday not in {a.index for a in detect_anomalies(series)}


# --- flat and degenerate series -------------------------------------------------


def test_flat_series_gives_nothing() -> None:
    assert detect_anomalies(np.full(200, 42.0)) == []
    assert detect_anomalies(np.full(200, 1234.56)) == []
    assert detect_anomalies(np.zeros(200)) == []


@pytest.mark.parametrize("base", [50.0, 1234.56])
@pytest.mark.parametrize(("factor", "direction"), [(1.8, "spike"), (0.2, "drop")])
def test_flat_series_with_one_change_finds_exactly_it(
    base: float, factor: float, direction: str
) -> None:
    series = np.full(200, base)
    series[120] = base * factor
    anomalies = detect_anomalies(series)
    assert [a.index for a in anomalies] == [120]
    assert anomalies[0].direction == direction
    assert anomalies[0].expected == pytest.approx(base)


def test_only_periods_after_the_history_can_be_flagged() -> None:
    series = np.full(100, 50.0)
    series[[5, 40]] = 200.0
    assert [a.index for a in detect_anomalies(series)] == [40]
    assert [a.index for a in detect_anomalies(series, min_history=0)] == [5, 40]


def test_short_series_gives_nothing() -> None:
    assert detect_anomalies(np.array([1.0, 50.0, 1.0])) == []
    assert detect_anomalies(np.full(20, 10.0)) == []
    assert detect_anomalies(np.array([])) == []


def test_last_period_can_be_flagged() -> None:
    series = _lab_counts(days=120)
    series[-1] = series[-1] * 0.2 if series[-1] > 50 else 250.0
    assert detect_anomalies(series)[-1].index == 119


# --- other granularities and shapes ---------------------------------------------


def test_weekly_series_without_seasonality() -> None:
    rng = np.random.default_rng(11)
    weeks = weekly_demand(rng, 104, level=5000.0, trend_per_day=20.0, week=(1.0,), counts=False)
    injected = inject_anomalies(rng, weeks, 3, magnitude=0.8, skip_first=12)
    found = {a.index for a in detect_anomalies(injected.series, season=1, min_history=12)}
    assert found == set(injected.positions)


def test_intermittent_demand_flags_only_unusual_sales() -> None:
    rng = np.random.default_rng(12)
    alarms = sum(len(detect_anomalies(intermittent_demand(rng, DAYS))) for _ in range(10))
    assert alarms <= 5
    series = intermittent_demand(rng, DAYS)
    series[200] = 20.0  # sizes are around 3
    assert 200 in {a.index for a in detect_anomalies(series)}


def test_signed_series_is_handled() -> None:
    rng = np.random.default_rng(13)
    margin = weekly_demand(rng, DAYS, level=1000.0, counts=False) - 300.0
    margin[150] += 2000.0
    assert 150 in {a.index for a in detect_anomalies(margin)}


def test_two_years_of_days_take_milliseconds() -> None:
    series = weekly_demand(np.random.default_rng(14), 730, level=100.0)
    started = time.perf_counter()
    for _ in range(20):
        detect_anomalies(series)
    elapsed_ms = (time.perf_counter() - started) / 20 * 1000
    print(f"detect_anomalies on 730 days: {elapsed_ms:.1f} ms")
    assert elapsed_ms < 50


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "message"),
    [
        (np.array([1.0, np.nan, 3.0] * 10), "NaN"),
        (np.array([1.0, np.inf, 3.0] * 10), "NaN or infinite"),
        (np.ones((30, 2)), "one-dimensional"),
    ],
)
def test_bad_series_raises(series: FloatArray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_anomalies(series)
    with pytest.raises(ValueError, match=message):
        expected_values(series)


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_bad_threshold_raises(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        detect_anomalies(np.ones(50), threshold=threshold)


def test_negative_history_raises() -> None:
    with pytest.raises(ValueError, match="min_history"):
        detect_anomalies(np.ones(50), min_history=-1)


# --- describe -------------------------------------------------------------------


def _pounds(value: float) -> str:
    return f"£{value:,.0f}"


def _orders(value: float) -> str:
    return f"{value:,.0f} orders"


def _lenses(value: float) -> str:
    return f"{value:,.0f} lenses"


def test_describe_a_spike() -> None:
    anomaly = Anomaly(index=300, value=4210.0, expected=1620.0, score=7.1, direction="spike")
    text = describe(anomaly, metric="Revenue", period="Tue 3 Nov 2026", fmt=_pounds)
    assert (
        text == "Revenue on Tue 3 Nov 2026 was £4,210, 2.6 times the £1,620 expected (score 7.1)."
    )


def test_describe_a_moderate_spike_in_percent() -> None:
    anomaly = Anomaly(index=300, value=2916.0, expected=1620.0, score=4.2, direction="spike")
    text = describe(anomaly, metric="Revenue", period="the week of 2 Nov 2026", fmt=_pounds)
    assert text == (
        "Revenue in the week of 2 Nov 2026 was £2,916, 80% above the £1,620 expected (score 4.2)."
    )


def test_describe_a_drop() -> None:
    anomaly = Anomaly(index=300, value=12.0, expected=33.0, score=-5.4, direction="drop")
    text = describe(anomaly, metric="Orders received", period="Wed 4 Nov 2026", fmt=_orders)
    assert "12 orders" in text
    assert "33 orders expected" in text
    assert "64% below" in text
    assert "Wed 4 Nov 2026" in text
    assert "score -5.4" in text


def test_describe_with_nothing_expected() -> None:
    anomaly = Anomaly(index=300, value=5.0, expected=0.0, score=5.0, direction="spike")
    text = describe(anomaly, metric="Lenses used", period="Sun 8 Nov 2026", fmt=_lenses)
    assert text == (
        "Lenses used on Sun 8 Nov 2026 was 5 lenses, 5 lenses above the 0 lenses expected"
        " (score 5.0)."
    )


def test_describe_a_detected_anomaly() -> None:
    series = np.full(100, 40.0)
    series[60] = 120.0
    (anomaly,) = detect_anomalies(series)
    text = describe(anomaly, metric="Orders received", period="2026-03-02", fmt=_orders)
    assert text.startswith("Orders received on 2026-03-02 was 120 orders, 3.0 times the 40 orders")
