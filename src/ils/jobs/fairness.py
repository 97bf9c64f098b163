"""Fairness between companies on shared, rate-limited queues: quotas and fair priorities.

The ``ai`` queue starts ten jobs a minute for the whole platform. In plain FIFO one
company queueing 200 runs pushed every other company's work back by 20 minutes. Both
stores already serve jobs by priority (BullMQ's order: 0 first, then 1, 2, ...; FIFO
within one priority), and BullMQ's groups are a paid feature, so fairness is built on
priorities alone and works the same in Redis and in the local store:

* **Classes.** Work nobody asked for just now (the schedules' 08:00 briefings, nightly
  anomaly runs, anything queued without a demand class) keeps its job type's priority
  (1-3), ahead of every user-triggered job. User-triggered jobs take a band of
  :data:`LEVELS_PER_CLASS` priorities per class: ``interactive`` (a chat answer a user
  waits for) from :data:`INTERACTIVE_BASE`, ``bulk`` (a manager's run) after it.
* **Levels.** A company's job gets its class's base plus ``k``, the number of that
  company's jobs of the class already outstanding on the queue (waiting, delayed or
  running), counted in the stores when it is queued. So every company's first
  outstanding job comes before anyone's second, its second before anyone's third.
* **Quotas.** At most ``max_outstanding`` such jobs at once and ``per_hour`` an hour
  per company, class and queue (``FairnessSettings``); beyond them the request gets
  :class:`QuotaExceededError` (429 with ``Retry-After``) and nothing is queued.

The bound (docs/jobs.md): a company may only ever have one waiting job at level 0 of
a class (a second is queued at level 1 or more while the first is outstanding), and
later jobs of the same priority queue behind it. So a company's job queued with
nothing of its class outstanding starts after at most one job per other company with
work of that class waiting, plus the better classes' jobs, whatever backlog those
companies hold; more generally a job at level ``k`` has at most ``k + 1`` jobs of each
other company of its class ahead of it when it is queued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.errors import RateLimitedError
from ils.fairness_settings import LEVELS_PER_CLASS, ClassQuota, FairnessSettings
from ils.jobs.model import JobOptions

#: Who is waiting for a job: ``interactive`` (a person, on screen) or ``bulk`` (a run a
#: manager started). Jobs without a class are platform work (schedules, follow-ups).
Demand = Literal["interactive", "bulk"]

#: The first priority of the interactive class: above every job type's own (1-3), so
#: scheduled and system work is served first whatever users queue.
INTERACTIVE_BASE = 100
#: The first priority of the bulk class: after every interactive level.
BULK_BASE = INTERACTIVE_BASE + LEVELS_PER_CLASS
#: The window of the hourly quota.
HOUR_MS = 3_600_000


def band(demand: Demand) -> tuple[int, int]:
    """The priorities of a class, both ends included."""
    base = INTERACTIVE_BASE if demand == "interactive" else BULK_BASE
    return base, base + LEVELS_PER_CLASS - 1


def fair_priority(demand: Demand, outstanding: int) -> int:
    """The priority of a company's job of ``demand`` with ``outstanding`` jobs of the
    same class already outstanding: the class's base plus that count (the last level
    of the band if the count is larger, which the quota keeps from happening)."""
    low, high = band(demand)
    return min(low + max(outstanding, 0), high)


@dataclass(frozen=True, slots=True)
class CompanyLoad:
    """One company's jobs of one class on one queue, as the stores hold them now.

    ``outstanding``: waiting, delayed or running; ``recent``: added within the hourly
    window (after an hour ago), in any state; ``oldest_recent_ms``: when the oldest of
    those was added (when the hourly quota frees a place), ``None`` when none were.
    """

    outstanding: int
    recent: int
    oldest_recent_ms: int | None = None

    def __add__(self, other: CompanyLoad) -> CompanyLoad:
        times = [t for t in (self.oldest_recent_ms, other.oldest_recent_ms) if t is not None]
        return CompanyLoad(
            self.outstanding + other.outstanding,
            self.recent + other.recent,
            min(times) if times else None,
        )


class LoadCounter(Protocol):
    """Counts a company's jobs in a priority band (``ils.jobs.fairness_load``)."""

    async def load(
        self,
        queue: str,
        company_id: str,
        priorities: tuple[int, int],
        since_ms: int,
        session: AsyncSession | None,
    ) -> CompanyLoad:
        """The company's load in ``priorities`` on ``queue``; with ``session``, seen
        from (and serialised with) that transaction."""
        ...


class QuotaExceededError(RateLimitedError):
    """A company reached its quota of a class of jobs on a queue (429).

    ``retry_after_s``: when asking again can succeed (the ``Retry-After`` header).
    """

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FairShare:
    """Admits a company's user-triggered job to a shared queue: checks its quotas and
    gives it its fair priority. Used by the producer for jobs queued with a demand
    class; a queue without quotas, or a job without a company, passes unchanged."""

    def __init__(self, settings: FairnessSettings, counter: LoadCounter, clock: Clock) -> None:
        self.settings = settings
        self.counter = counter
        self.clock = clock

    def quota(self, queue: str, demand: Demand) -> ClassQuota | None:
        """The quota of ``demand`` on ``queue``, ``None`` when the queue has none."""
        if not self.settings.enabled:
            return None
        fairness = self.settings.queues.get(queue)
        if fairness is None:
            return None
        return fairness.interactive if demand == "interactive" else fairness.bulk

    async def admit(
        self,
        queue: str,
        demand: Demand,
        options: JobOptions,
        session: AsyncSession | None = None,
    ) -> JobOptions:
        """``options`` with the job's fair priority.

        Raises:
            QuotaExceededError: the company has ``max_outstanding`` jobs of the class
                outstanding, or added ``per_hour`` in the last hour.
        """
        quota = self.quota(queue, demand)
        company_id = options.company_id
        if quota is None or company_id is None:
            return options
        now = self.clock.now_ms()
        load = await self.counter.load(queue, company_id, band(demand), now - HOUR_MS, session)
        if load.outstanding >= quota.max_outstanding:
            raise QuotaExceededError(
                f"your company already has {load.outstanding} {demand} jobs waiting on the "
                f"{queue} queue (at most {quota.max_outstanding}); try again when they ran",
                self.settings.busy_retry_after_s,
            )
        if load.recent >= quota.per_hour:
            oldest = load.oldest_recent_ms if load.oldest_recent_ms is not None else now
            retry_after_s = max(1, math.ceil((oldest + HOUR_MS - now) / 1000))
            raise QuotaExceededError(
                f"your company queued {load.recent} {demand} jobs on the {queue} queue in "
                f"the last hour (at most {quota.per_hour})",
                retry_after_s,
            )
        return replace(options, priority=fair_priority(demand, load.outstanding))
