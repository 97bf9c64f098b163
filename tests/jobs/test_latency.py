"""``ils.jobs.latency``: buckets, percentiles and stores, from timings made exact by a
hand-moved clock on the in-memory store (the stores' own reads are held to one
contract by ``test_store_contract.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from ils.clock import ManualClock
from ils.errors import StoreUnavailableError, UnknownQueueError
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.latency import (
    LatencyWindow,
    Percentiles,
    queue_latency,
    weighted_percentile,
    window_start,
)
from ils.jobs.model import JobOptions, NewJob
from ils.jobs.stores.base import JobTiming
from ils.jobs.stores.memory.state import MemoryState
from ils.jobs.stores.memory.store import MemoryJobStore
from ils.settings import Settings

Q = "pdf"
MINUTE = 60_000
#: A minute boundary, so a test knows which bucket "now" is in.
START = 1_700_000_040_000


def catalogue() -> Catalogue:
    pdf = {"attempts": 2, "backoff_delay_ms": 0, "rate_limit_max": 0}
    return build_catalogue(Settings(queues={"pdf": pdf}))


def job(n: int, **options: Any) -> NewJob:
    return NewJob("order-sheet", {"type": "order-sheet", "orderId": f"o{n}"}, JobOptions(**options))


async def run_one(
    store: MemoryJobStore, clock: ManualClock, wait_ms: int, run_ms: int, **options: Any
) -> None:
    """Add a job, let it wait ``wait_ms``, run it for ``run_ms`` and complete it."""
    await store.add(Q, job(0, **options))
    clock.advance(wait_ms)
    claimed = (await store.fetch(Q, "worker")).job
    assert claimed is not None
    clock.advance(run_ms)
    await store.complete(Q, claimed, None)


class Canned(MemoryJobStore):
    """A store answering given timings, or failing like an unreachable one."""

    def __init__(self, kind: str, timings: list[JobTiming] | None) -> None:
        super().__init__(catalogue())
        self.kind = kind
        self.timings = timings

    async def finished_timings(
        self, queue: str, since_ms: int, until_ms: int, *, bucket_ms: int, per_bucket: int
    ) -> list[JobTiming]:
        if self.timings is None:
            raise StoreUnavailableError(f"{self.kind} does not answer")
        return [t for t in self.timings if since_ms <= t.finished_ms < until_ms]


def test_nearest_rank_percentiles_are_times_some_job_took() -> None:
    values = [(ms, 1.0) for ms in range(1, 101)]
    assert weighted_percentile(values, 0.5) == 50
    assert weighted_percentile(values, 0.95) == 95
    assert weighted_percentile([(7, 1.0)], 0.95) == 7
    assert weighted_percentile([], 0.5) is None
    # Weights count as that many jobs: nine fast ones and one slow one.
    assert weighted_percentile([(1000, 1.0), (10, 9.0)], 0.9) == 10
    assert weighted_percentile([(1000, 1.0), (10, 9.0)], 0.95) == 1000


def test_windows_are_whole_buckets_ending_with_the_current_one() -> None:
    now = START + 42_123
    assert window_start(LatencyWindow.HOUR, now) == START - 59 * MINUTE
    quarter = 15 * MINUTE
    day_start = window_start(LatencyWindow.DAY, now)
    assert day_start % quarter == 0
    assert day_start + 96 * quarter > now >= day_start + 95 * quarter


async def test_hour_percentiles_per_minute_from_known_timings() -> None:
    clock = ManualClock(START)
    store = MemoryJobStore(catalogue(), clock=clock)
    # Minute 0: twenty jobs waiting 1..20 ms and running 10..200 ms.
    for n in range(1, 21):
        await run_one(store, clock, n, 10 * n)
    assert clock.now_ms() < START + MINUTE
    # Minute 2: one slow job (a quiet minute between).
    clock.advance(2 * MINUTE - (clock.now_ms() - START))
    await run_one(store, clock, 5_000, 30_000)
    latency = await queue_latency([store], Q, "hour", clock)
    assert (latency.queue, latency.window, latency.bucket_ms) == (Q, LatencyWindow.HOUR, MINUTE)
    assert (latency.stores, latency.unavailable) == (["memory"], [])
    points = latency.buckets
    assert len(points) == 60
    assert [p.start_ms for p in points] == [START - 57 * MINUTE + n * MINUTE for n in range(60)]
    first, quiet, slow = points[-3:]
    assert first.start_ms == START
    assert first.jobs == 20
    assert first.wait == Percentiles(10, 19)
    assert first.run == Percentiles(100, 190)
    assert (quiet.jobs, quiet.wait, quiet.run) == (
        0,
        Percentiles(None, None),
        Percentiles(None, None),
    )
    assert (slow.jobs, slow.wait, slow.run) == (
        1,
        Percentiles(5_000, 5_000),
        Percentiles(30_000, 30_000),
    )
    assert sum(p.jobs for p in points) == 21


async def test_day_has_fifteen_minute_buckets_and_forgets_yesterday() -> None:
    clock = ManualClock(START)
    store = MemoryJobStore(catalogue(), clock=clock)
    await run_one(store, clock, 1, 100)  # more than a day before the reading
    clock.advance(25 * 60 * MINUTE)
    await run_one(store, clock, 2, 200)
    earlier = clock.now_ms()
    clock.advance(75 * MINUTE)
    await run_one(store, clock, 3, 300)
    day = await queue_latency([store], Q, LatencyWindow.DAY, clock)
    quarter = 15 * MINUTE
    assert (len(day.buckets), day.bucket_ms) == (96, quarter)
    busy = [p for p in day.buckets if p.jobs]
    assert [(p.wait.p50_ms, p.run.p50_ms) for p in busy] == [(2, 200), (3, 300)]
    assert [p.start_ms for p in busy] == [
        earlier - earlier % quarter,
        clock.now_ms() - clock.now_ms() % quarter,
    ]
    assert busy[1] is day.buckets[-1]
    # The hour sees only the last one.
    hour = await queue_latency([store], Q, LatencyWindow.HOUR, clock)
    assert [(p.wait.p50_ms, p.run.p50_ms) for p in hour.buckets if p.jobs] == [(3, 300)]


async def test_a_retried_job_counts_in_run_time_only() -> None:
    clock = ManualClock(START)
    store = MemoryJobStore(catalogue(), clock=clock)
    await store.add(Q, job(1))
    clock.advance(50)
    first = (await store.fetch(Q, "worker")).job
    assert first is not None
    clock.advance(1_000)
    await store.fail(Q, first, "flaky", None)  # back to waiting (no back-off)
    clock.advance(7)
    second = (await store.fetch(Q, "worker")).job
    assert second is not None
    clock.advance(400)
    await store.complete(Q, second, None)
    (point,) = [p for p in (await queue_latency([store], Q, "hour", clock)).buckets if p.jobs]
    assert point.run == Percentiles(400, 400)
    assert point.wait == Percentiles(None, None)


async def test_a_sampled_bucket_still_counts_every_job() -> None:
    clock = ManualClock(START)
    store = MemoryJobStore(catalogue(), clock=clock)
    for n in range(1, 101):
        await run_one(store, clock, n, 1)
    latency = await queue_latency([store], Q, "hour", clock, per_bucket=10)
    (point,) = [p for p in latency.buckets if p.jobs]
    assert point.jobs == 100
    # Every 10th job of the 100 (waits 1, 11, ..., 91): near the exact 50 and 95.
    assert point.wait.p50_ms is not None and abs(point.wait.p50_ms - 50) <= 10
    assert point.wait.p95_ms is not None and abs(point.wait.p95_ms - 95) <= 10


async def test_stores_weigh_by_their_jobs_and_an_unreachable_one_is_named() -> None:
    clock = ManualClock(START + 30_000)
    # Redis sampled 9 of 90 jobs (weight 10), the local store has 10 slow ones.
    redis = Canned("redis", [JobTiming(START + n, 5, 100, 10.0) for n in range(9)])
    local = Canned("local", [JobTiming(START + n, 900, 9_000, 1.0) for n in range(10)])
    down = Canned("elsewhere", None)
    latency = await queue_latency([redis, local, down], Q, "hour", clock)
    assert (latency.stores, latency.unavailable) == (["redis", "local"], ["elsewhere"])
    point = latency.buckets[-1]
    assert point.jobs == 100
    assert point.wait == Percentiles(5, 900)  # 90 of 100 jobs waited 5 ms
    assert point.run == Percentiles(100, 9_000)
    with pytest.raises(StoreUnavailableError):
        await queue_latency([down], Q, "hour", clock)


async def test_an_unknown_queue_or_window_is_refused() -> None:
    store = MemoryJobStore(catalogue(), state=MemoryState())
    with pytest.raises(UnknownQueueError):
        await queue_latency([store], "sms", "hour", ManualClock(START))
    with pytest.raises(ValueError, match="week"):
        await queue_latency([store], Q, "week", ManualClock(START))
