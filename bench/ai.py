"""AI worker figures: demand forecasts per second, by method, and their accuracy.

Builds synthetic daily histories with known structure (the generators of the tests,
``tests/workers/ai/synthetic.py``): ~60% smooth weekly demand with a trend, ~25%
intermittent and ~15% lumpy. Forecasts each product's next ``--horizon`` days with
``forecast_demand`` and prints: total time, ms per forecast (mean, p50, p95), the
same per method, and per kind of series the mean MASE of our forecast against the
seasonal naive one over a 28-day holdout (the days after the history), with the
share of holdout days inside the 90% bounds. ``--compare-defaults N`` also fits N of
the smooth series with statsmodels' default ``ExponentialSmoothing(...).fit()`` (damped
trend, estimated initial states, brute-force start), to show what our fit settings
save and what they cost in accuracy.

Then the same products through the real ``demand-forecast`` job (``--no-job`` skips
it): seeded into a SQLite database, queued with the helper, run by the ai queue's
runner with the forecasts fitted in the worker's CPU pool, and stored; it prints the
time from queued to completed per forecast.

    .venv/bin/python bench/ai.py [--products 1000] [--days 365] [--horizon 30] [--seed 0]
        [--compare-defaults 50] [--pool 2] [--batch 50] [--no-job]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import insert
from statsmodels.tsa.holtwinters import ExponentialSmoothing

# The generators live with the tests; a script's sys.path starts at bench/, not the root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workers.ai.synthetic import intermittent_demand, weekly_demand

from ils.clock import utc_now
from ils.db.engine import session_factory
from ils.domain.companies import Company, CompanyKind
from ils.domain.supply import DailySale, Product, ProductCategory, StockLevel
from ils.domain.types import new_id
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import ai
from ils.workers.ai.forecast import (
    FloatArray,
    forecast_demand,
    mase,
    seasonal_naive,
)

HOLDOUT: Final = 28
#: Share of products of each kind; the rest are lumpy.
SMOOTH_SHARE: Final = 0.60
INTERMITTENT_SHARE: Final = 0.25


def synthetic_history(rng: np.random.Generator, days: int) -> tuple[str, FloatArray]:
    """One product's kind and its ``days`` of daily demand."""
    draw = rng.random()
    if draw < SMOOTH_SHARE:
        level = rng.uniform(3, 60)
        series = weekly_demand(
            rng,
            days,
            level=level,
            trend_per_day=level * rng.uniform(-0.0005, 0.0015),
            start_weekday=int(rng.integers(7)),
        )
        return "smooth", series
    probability = rng.uniform(0.05, 0.4)
    if draw < SMOOTH_SHARE + INTERMITTENT_SHARE:
        size = rng.uniform(1, 6)
        return "intermittent", intermittent_demand(
            rng, days, probability=probability, size_mean=size
        )
    size = rng.uniform(2, 8)
    series = intermittent_demand(
        rng, days, probability=probability, size_mean=size, size_spread=1.5
    )
    return "lumpy", series


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pure_forecasts(args: argparse.Namespace) -> dict[str, Any]:
    """Forecast every product in this process (no database, no queue) and score them.

    Each series is generated ``HOLDOUT`` days longer than ``--days``; the forecast sees
    only the first ``--days`` and the rest scores it. Returns the figures ``main``
    prints: ``seconds``, ``ms`` (all per-forecast times), ``by_method`` (method ->
    times), ``quality`` (kind -> lists of our MASE, naive MASE and coverage).
    """
    rng = np.random.default_rng(args.seed)
    products = [synthetic_history(rng, args.days + HOLDOUT) for _ in range(args.products)]
    forecast_demand(products[0][1][: args.days], args.horizon)  # warm-up: imports
    times: list[float] = []
    by_method: dict[str, list[float]] = defaultdict(list)
    quality: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    start = time.perf_counter()
    for kind, series in products:
        history, future = series[: args.days], series[args.days :]
        began = time.perf_counter()
        forecast = forecast_demand(history, args.horizon)
        took = 1000 * (time.perf_counter() - began)
        times.append(took)
        by_method[forecast.method].append(took)
        scored = min(HOLDOUT, args.horizon)
        actual = future[:scored]
        naive = seasonal_naive(history, scored)
        quality[kind]["ours"].append(mase(actual, forecast.mean[:scored], history))
        quality[kind]["naive"].append(mase(actual, naive, history))
        inside = (actual >= forecast.lower[:scored]) & (actual <= forecast.upper[:scored])
        quality[kind]["coverage"].append(float(np.mean(inside)))
        quality[kind]["total_error"].append(
            abs(float(np.sum(forecast.mean[:scored]) - np.sum(actual)))
        )
        quality[kind]["naive_total_error"].append(abs(float(np.sum(naive) - np.sum(actual))))
    return {
        "seconds": time.perf_counter() - start,
        "ms": times,
        "by_method": dict(by_method),
        "quality": {kind: dict(values) for kind, values in quality.items()},
    }


def defaults_comparison(args: argparse.Namespace) -> dict[str, list[float]]:
    """ms and holdout MASE of statsmodels' default Holt-Winters fit against ours.

    The same smooth series as ``pure_forecasts`` (same seed), the first
    ``--compare-defaults`` of them; the default model is the damped additive one.
    """
    rng = np.random.default_rng(args.seed)
    products = [synthetic_history(rng, args.days + HOLDOUT) for _ in range(args.products)]
    smooth = [series for kind, series in products if kind == "smooth"][: args.compare_defaults]
    figures: dict[str, list[float]] = defaultdict(list)
    for series in smooth:
        history, actual = series[: args.days], series[args.days :]
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(
                history, trend="add", damped_trend=True, seasonal="add", seasonal_periods=7
            )
            default = np.maximum(np.asarray(model.fit().forecast(HOLDOUT)), 0.0)
        figures["default_ms"].append(1000 * (time.perf_counter() - began))
        began = time.perf_counter()
        ours = forecast_demand(history, HOLDOUT).mean
        figures["ours_ms"].append(1000 * (time.perf_counter() - began))
        figures["default_mase"].append(mase(actual, default, history))
        figures["ours_mase"].append(mase(actual, ours, history))
    return dict(figures)


def print_defaults(figures: dict[str, list[float]]) -> None:
    count = len(figures["ours_ms"])
    print(f"statsmodels defaults against our fit settings, {count} smooth series")
    for name in ("default", "ours"):
        took = figures[f"{name}_ms"]
        print(
            f"  {name:<8} p50 {pct(took, 0.5):7.2f} ms  p95 {pct(took, 0.95):7.2f} ms  "
            f"MASE {statistics.fmean(figures[f'{name}_mase']):.3f}"
        )


def print_pure(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    times: list[float] = figures["ms"]
    print(
        f"pure forecasts: {args.products} products x {args.days} days, horizon {args.horizon}, "
        f"seed {args.seed}; {os.cpu_count()} CPUs, one process"
    )
    print(
        f"  total {figures['seconds']:.2f} s; per forecast mean {statistics.fmean(times):.2f} ms, "
        f"p50 {pct(times, 0.5):.2f} ms, p95 {pct(times, 0.95):.2f} ms"
    )
    print(f"  {'method':<16} {'count':>6} {'mean ms':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for method, took in sorted(figures["by_method"].items()):
        print(
            f"  {method:<16} {len(took):>6} {statistics.fmean(took):>9.2f} "
            f"{pct(took, 0.5):>8.2f} {pct(took, 0.95):>8.2f}"
        )
    scored = min(HOLDOUT, args.horizon)
    print(f"  accuracy over the {scored} days after the history (MASE: lower is better)")
    print(
        f"  {'kind':<13} {'count':>6} {'MASE ours':>10} {'naive':>8} {'in 90% bounds':>14}"
        f" {'|total error| ours':>19} {'naive':>8}"
    )
    for kind, values in sorted(figures["quality"].items()):
        print(
            f"  {kind:<13} {len(values['ours']):>6} {statistics.fmean(values['ours']):>10.3f} "
            f"{statistics.fmean(values['naive']):>8.3f} "
            f"{100 * statistics.fmean(values['coverage']):>13.1f}% "
            f"{statistics.fmean(values['total_error']):>19.1f} "
            f"{statistics.fmean(values['naive_total_error']):>8.1f}"
        )


# -- the real job: database, queue, worker, CPU pool -----------------------------------


async def seed_lab(system: JobSystem, histories: list[FloatArray], today: date) -> str:
    """A lab stocking one product per history, with the histories as daily usage."""
    lab = Company(kind=CompanyKind.LAB, name="Bench Lab", time_zone="UTC")
    supplier = Company(kind=CompanyKind.SUPPLIER, name="Bench Supplier")
    async with session_factory(system.engine)() as session, session.begin():
        session.add_all([lab, supplier])
        await session.flush()
        product_rows, stock_rows, sale_rows = [], [], []
        for n, history in enumerate(histories):
            product_id = new_id()
            product_rows.append(
                {
                    "id": product_id,
                    "company_id": supplier.id,
                    "sku": f"SKU-{n:05d}",
                    "name": f"Bench product {n}",
                    "category": ProductCategory.LENS_BLANK,
                    "unit_price_cents": 1000,
                    "lead_time_days": 3 + n % 10,
                }
            )
            stock_rows.append(
                {
                    "id": new_id(),
                    "company_id": lab.id,
                    "product_id": product_id,
                    "on_hand": int(history[-14:].sum()),
                    "reorder_point": int(history[-7:].sum()),
                }
            )
            first = today - timedelta(days=len(history))
            sale_rows += [
                {
                    "id": new_id(),
                    "company_id": lab.id,
                    "product_id": product_id,
                    "day": first + timedelta(days=offset),
                    "units": int(units),
                }
                for offset, units in enumerate(history)
                if units > 0
            ]
        await session.execute(insert(Product), product_rows)
        await session.execute(insert(StockLevel), stock_rows)
        for start in range(0, len(sale_rows), 20_000):
            await session.execute(insert(DailySale), sale_rows[start : start + 20_000])
    return lab.id


async def job_forecast(args: argparse.Namespace) -> dict[str, Any]:
    """The ``demand-forecast`` job end to end in local mode (SQLite under a temporary
    directory): queued with the helper, run by the ai queue's runner, fitted in the
    worker's CPU pool of ``--pool`` processes, stored. Returns the timings."""
    rng = np.random.default_rng(args.seed)
    histories = [synthetic_history(rng, args.days)[1] for _ in range(args.products)]
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            _env_file=None,
            data_dir=Path(scratch),
            redis_url=None,
            local_poll_interval_ms=20,
            ai={"pool_size": args.pool, "forecast_batch": args.batch},
        )
        system = await JobSystem.open(settings)
        try:
            today = utc_now(system.clock).date()
            began = time.perf_counter()
            company_id = await seed_lab(system, histories, today)
            seeded = time.perf_counter() - began
            registry = HandlerRegistry(system.job_types)
            ai.register(registry, system.worker_context())
            runner = Runner(system.stores(), [system.catalogue["ai"]], registry)
            runner.start()
            began = time.perf_counter()
            ref = await system.helpers.queue_demand_forecast(company_id, args.horizon)
            job = await finished(system, ref.job_id)
            took = time.perf_counter() - began
            await runner.stop(5)
        finally:
            await system.close()
    if job.state is not JobState.COMPLETED:
        raise RuntimeError(f"the forecast job ended {job.state}: {job.failed_reason}")
    return {"seeded": seeded, "seconds": took, "result": job.result, "logs": job.logs}


async def finished(system: JobSystem, job_id: str) -> JobRecord:
    """Wait for the job to complete or fail."""
    while True:
        job = await system.local.get_job("ai", job_id)
        if job is not None and job.state in (JobState.COMPLETED, JobState.FAILED):
            return job
        await asyncio.sleep(0.05)


def print_job(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    per = 1000 * figures["seconds"] / args.products
    print(
        f"the demand-forecast job: {args.products} products x {args.days} days in SQLite "
        f"(seeded in {figures['seeded']:.1f} s), horizon {args.horizon}, "
        f"CPU pool of {args.pool}, batches of {args.batch}"
    )
    print(
        f"  queued to completed {figures['seconds']:.2f} s: {per:.2f} ms per forecast "
        f"(read, fit in the pool, store); result {figures['result']}"
    )
    for line in figures["logs"]:
        print(f"  job log: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1000, help="products to forecast")
    parser.add_argument("--days", type=int, default=365, help="days of history per product")
    parser.add_argument("--horizon", type=int, default=30, help="days to forecast")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic histories")
    parser.add_argument(
        "--compare-defaults", type=int, default=50, help="smooth series to fit with defaults"
    )
    parser.add_argument("--pool", type=int, default=2, help="CPU pool processes of the job")
    parser.add_argument("--batch", type=int, default=50, help="products per pool call")
    parser.add_argument("--no-job", action="store_true", help="skip the end-to-end job run")
    args = parser.parse_args()
    print_pure(args, pure_forecasts(args))
    if not args.no_job:
        print_job(args, asyncio.run(job_forecast(args)))
    if args.compare_defaults > 0:
        print_defaults(defaults_comparison(args))


if __name__ == "__main__":
    main()
