"""The body of ``GET /api/queue/{queue}/latency`` (:mod:`ils.jobs.latency`).

Flat points, one per bucket, so the dashboard's chart script reads them as lines
without reshaping: ``at`` is the bucket's start (UTC; the page shows it in the
viewer's zone), ``jobs`` the finished jobs it holds, and the four times in
milliseconds, ``null`` where the bucket has no job with that figure.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ils.jobs.latency import LatencyBucket, LatencyWindow, QueueLatency
from ils.web.schemas.common import OutputModel
from ils.web.schemas.times import utc_from_ms


class LatencyPointOut(BaseModel):
    """One bucket of the chart."""

    at: datetime = Field(description="When the bucket starts (it spans bucket_s).")
    jobs: int = Field(description="Jobs that finished in the bucket (estimated when sampled).")
    wait_p50_ms: int | None = Field(description="Median time from due to start.")
    wait_p95_ms: int | None
    run_p50_ms: int | None = Field(description="Median time from start to finish.")
    run_p95_ms: int | None

    @classmethod
    def of(cls, bucket: LatencyBucket) -> LatencyPointOut:
        return cls(
            at=utc_from_ms(bucket.start_ms),
            jobs=bucket.jobs,
            wait_p50_ms=bucket.wait.p50_ms,
            wait_p95_ms=bucket.wait.p95_ms,
            run_p50_ms=bucket.run.p50_ms,
            run_p95_ms=bucket.run.p95_ms,
        )


class LatencyOut(OutputModel):
    """A queue's wait and run times per bucket, oldest first; the last bucket is the
    current one, still filling."""

    queue: str
    window: LatencyWindow
    bucket_s: int = Field(description="60 for the hour, 900 for the day.")
    stores: list[str] = Field(description="The stores read: redis, local.")
    unavailable: list[str] = Field(description="Stores that did not answer: not counted.")
    points: list[LatencyPointOut]

    @classmethod
    def of(cls, latency: QueueLatency) -> LatencyOut:
        return cls.read_from(
            latency,
            bucket_s=latency.bucket_ms // 1000,
            points=[LatencyPointOut.of(bucket) for bucket in latency.buckets],
        )
