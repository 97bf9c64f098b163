"""How long a queue's jobs wait and run: p50 and p95 per bucket over the last hour or
day, for the dashboard's latency charts and ``GET /api/queue/{queue}/latency``.

Why it is built this way:

* The figures come from the stores (``JobStore.finished_timings``), not from this
  process's memory, so every web process shows the same chart, jobs finished by
  workers elsewhere (Node's included) count, and a restart loses nothing but what
  retention already removed.
* Reads are bounded: each store gives at most :data:`SAMPLE_PER_BUCKET` jobs per bucket,
  weighted by how many jobs each stands for. A queue keeping 100,000 finished jobs
  answers from about 6,000 job reads for the hour and 9,600 for the day (measured
  with 100,000 jobs finished within the hour, the whole request for the hour: about
  70 ms on SQLite, and about 60 ms more for a Redis store's read). A p95 from a sample
  of 100 rests on its 5 slowest jobs, enough for a chart; a quiet bucket is read whole
  and exact.
* The day has 96 buckets of 15 minutes rather than 1,440 of one minute: a chart
  cannot show more, and every time zone is a whole number of quarter hours from UTC,
  so the buckets start on the viewer's own quarter hours.
* Stores are passed in (``JobMonitor.reachable_stores()`` in the app), so a store that
  does not answer is left out and named, and the rest still make a chart.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ils.clock import Clock
from ils.errors import ILSError
from ils.jobs.stores.base import JobStore, JobTiming

#: Jobs each store reads per bucket at most (see the module docstring).
SAMPLE_PER_BUCKET: Final = 100
#: The percentiles every bucket reports.
P50: Final = 0.5
P95: Final = 0.95


class LatencyWindow(StrEnum):
    """The span a latency chart covers, and the width of its buckets."""

    HOUR = "hour"
    DAY = "day"

    @property
    def bucket_ms(self) -> int:
        """One minute for the hour, 15 minutes for the day."""
        return 60_000 if self is LatencyWindow.HOUR else 900_000

    @property
    def buckets(self) -> int:
        """60 for the hour, 96 for the day."""
        return 60 if self is LatencyWindow.HOUR else 96


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50 and p95 in milliseconds; ``None`` when no job of the bucket has the figure."""

    p50_ms: int | None
    p95_ms: int | None


@dataclass(frozen=True, slots=True)
class LatencyBucket:
    """One bucket: when it starts, how many finished jobs it holds (estimated from
    the weights when a store sampled), and the wait and run percentiles."""

    start_ms: int
    jobs: int
    wait: Percentiles
    run: Percentiles


@dataclass(frozen=True, slots=True)
class QueueLatency:
    """A queue's latency chart: buckets oldest first, the current one last (partial).

    ``stores`` names the stores read; ``unavailable`` those that did not answer
    (their jobs are missing from the figures).
    """

    queue: str
    window: LatencyWindow
    buckets: list[LatencyBucket]
    stores: list[str]
    unavailable: list[str]

    @property
    def bucket_ms(self) -> int:
        return self.window.bucket_ms


def weighted_percentile(values: Sequence[tuple[int, float]], q: float) -> int | None:
    """The nearest-rank percentile ``q`` (0 < q <= 1) of ``(value, weight)`` pairs:
    the smallest value whose cumulative weight reaches ``q`` of the total. Always one
    of the values (a time some job took), never an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    target = q * math.fsum(weight for _, weight in ordered)
    reached = 0.0
    for value, weight in ordered:
        reached += weight
        if reached >= target - 1e-9:
            return value
    return ordered[-1][0]


def percentiles(values: Sequence[tuple[int, float]]) -> Percentiles:
    """p50 and p95 of weighted values."""
    return Percentiles(weighted_percentile(values, P50), weighted_percentile(values, P95))


def window_start(window: LatencyWindow, now_ms: int) -> int:
    """The first bucket's start: whole buckets, the last one holding ``now_ms``."""
    width = window.bucket_ms
    return (now_ms // width - window.buckets + 1) * width


def summarise(
    timings: Sequence[JobTiming], window: LatencyWindow, start_ms: int
) -> list[LatencyBucket]:
    """Bucket timings (from any number of stores) and take their percentiles."""
    width = window.bucket_ms
    waits: list[list[tuple[int, float]]] = [[] for _ in range(window.buckets)]
    runs: list[list[tuple[int, float]]] = [[] for _ in range(window.buckets)]
    for timing in timings:
        index = (timing.finished_ms - start_ms) // width
        if not 0 <= index < window.buckets:
            continue
        runs[index].append((timing.run_ms, timing.weight))
        if timing.wait_ms is not None:
            waits[index].append((timing.wait_ms, timing.weight))
    return [
        LatencyBucket(
            start_ms + index * width,
            round(math.fsum(weight for _, weight in runs[index])),
            percentiles(waits[index]),
            percentiles(runs[index]),
        )
        for index in range(window.buckets)
    ]


async def queue_latency(
    stores: Sequence[JobStore],
    queue: str,
    window: LatencyWindow | str,
    clock: Clock,
    *,
    per_bucket: int = SAMPLE_PER_BUCKET,
) -> QueueLatency:
    """Wait and run percentiles of ``queue`` per bucket over ``window`` ("hour" or
    "day") up to now, over ``stores`` (read at once, side by side).

    A store raising an :class:`ILSError` (unreachable) is named in ``unavailable`` and
    left out; ``UnknownQueueError`` is raised when every store refuses the queue.
    """
    span = LatencyWindow(window)
    start = window_start(span, clock.now_ms())
    end = start + span.buckets * span.bucket_ms

    async def read(store: JobStore) -> list[JobTiming] | ILSError:
        try:
            return await store.finished_timings(
                queue, start, end, bucket_ms=span.bucket_ms, per_bucket=per_bucket
            )
        except ILSError as exc:
            return exc

    answers = await asyncio.gather(*(read(store) for store in stores))
    timings: list[JobTiming] = []
    read_from: list[str] = []
    unavailable: list[str] = []
    errors: list[ILSError] = []
    for store, answer in zip(stores, answers, strict=True):
        if isinstance(answer, ILSError):
            unavailable.append(store.kind)
            errors.append(answer)
        else:
            read_from.append(store.kind)
            timings += answer
    if errors and not read_from:
        raise errors[0]
    return QueueLatency(queue, span, summarise(timings, span, start), read_from, unavailable)
