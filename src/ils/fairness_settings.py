"""Settings of the per-company quotas on shared queues (``ILS_FAIRNESS__...``).

A module of its own, beside ``ils.settings``, so the quota rules are read where they
are defined (``ils.jobs.fairness`` applies them) and the settings module stays small.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

#: How many priority levels each demand class has: a company's k-th outstanding job of
#: a class gets its class's first level plus k, so no quota may allow more.
LEVELS_PER_CLASS = 1000


class ClassQuota(BaseModel):
    """What one company may have of one demand class on one queue.

    ``max_outstanding``: its jobs of that class waiting, delayed (retrying) or running
    at once; ``per_hour``: its jobs of that class added in the last hour. Past either,
    the request is refused (429 with ``Retry-After``) and nothing is queued.
    """

    model_config = {"extra": "forbid"}

    max_outstanding: int = Field(default=10, ge=1, le=LEVELS_PER_CLASS)
    per_hour: int = Field(default=60, ge=1, le=1_000_000)


class QueueFairness(BaseModel):
    """The quotas of one shared queue (``ILS_FAIRNESS__QUEUES__AI__BULK__PER_HOUR``).

    ``interactive``: work a user waits for on screen (chat answers); ``bulk``: runs a
    manager starts (forecasts, anomaly detection, insights, a briefing on demand).
    """

    model_config = {"extra": "forbid"}

    interactive: ClassQuota = Field(
        default_factory=lambda: ClassQuota(max_outstanding=10, per_hour=120)
    )
    bulk: ClassQuota = Field(default_factory=lambda: ClassQuota(max_outstanding=10, per_hour=60))


class FairnessSettings(BaseModel):
    """Fairness between companies on shared, rate-limited queues (docs/jobs.md,
    "Fairness between companies"). Only the queues named here get quotas and fair
    priorities; ``enabled=false`` turns both off (the platform-wide FIFO of before)."""

    model_config = {"extra": "forbid"}

    enabled: bool = True
    queues: dict[str, QueueFairness] = Field(default_factory=lambda: {"ai": QueueFairness()})
    # What ``Retry-After`` says when a company has too many jobs outstanding: about
    # how long the queue takes to start one more of them (the ai queue's rate window).
    busy_retry_after_s: int = Field(default=60, ge=1, le=86_400)
