"""Prometheus metrics of the job system, on a registry of its own (no module global).

Two kinds of figures:

* From the stores, read at scrape time (:meth:`JobMetrics.refresh`): jobs by queue
  and state, summed over every process (the stores are shared), and whether the
  Redis fallback is in use.
* From this process's workers, counted as jobs finish (:meth:`JobMetrics.observe`,
  a runner listener): completed and failed totals, processing time and the delay
  from enqueue to start. Each process counts its own; Prometheus sums the scrapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ils.jobs.attempt import JobOutcome
from ils.jobs.model import COUNTED_STATES, JobState

if TYPE_CHECKING:
    from ils.jobs.monitor import JobMonitor

#: The text exposition format's media type.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Seconds: from a no-op job (milliseconds) to a slow AI job (minutes).
PROCESSING_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Seconds from enqueue to start: rate limits and delays make minutes normal.
DELAY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class JobMetrics:
    """The job system's metrics and their exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        gauge, registry = self._gauge, self.registry
        self.jobs = gauge(
            "ils_jobs",
            "Jobs by queue and state, over all processes (read from the stores).",
            "queue",
            "state",
        )
        self.completed = Counter(
            "ils_jobs_completed", "Jobs this process completed.", ["queue"], registry=registry
        )
        self.failed = Counter(
            "ils_jobs_failed",
            "Job attempts that failed in this process, by whether the job will retry.",
            ["queue", "final"],
            registry=registry,
        )
        self.processing = Histogram(
            "ils_job_processing_seconds",
            "How long handlers of this process ran, per attempt.",
            ["queue"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self.start_delay = Histogram(
            "ils_job_start_delay_seconds",
            "From enqueue to the first start of a job (delays and rate limits included).",
            ["queue"],
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.fallback = gauge(
            "ils_fallback_in_use",
            "1 while Redis is configured but unreachable and jobs go to the local store.",
        )

        self.held = gauge(
            "ils_fallback_held_jobs",
            "Jobs whose add to Redis had an unknown outcome, waiting to be resolved into "
            "Redis by id (they never run from the local store).",
        )
        self.held_age = gauge(
            "ils_fallback_held_oldest_age_seconds",
            "Age of the oldest held job (0 when none is held).",
        )
        self.held_resolved = gauge(
            "ils_fallback_held_resolved_total",
            "Held jobs resolved so far, over every process: was_in_redis (the first add "
            "had landed) or added_again (it had not).",
            "outcome",
        )
        self.eviction_unsafe = gauge(
            "ils_redis_eviction_unsafe",
            "1 while Redis's maxmemory-policy is not noeviction (queue keys may be evicted).",
        )

        self.status = gauge(
            "ils_health_status",
            "The health report's status: 0 ok, 1 degraded, 2 down (see ils_health_problem).",
        )
        self.problem = gauge(
            "ils_health_problem",
            "1 for each problem the health report names now (code, severity, queue; queue "
            "is empty for problems of the whole system).",
            "code",
            "severity",
            "queue",
        )

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        """A gauge on this registry: most figures are gauges read at scrape time."""
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def observe(self, outcome: JobOutcome) -> None:
        """Count one finished attempt (a runner listener)."""
        queue = outcome.queue
        self.processing.labels(queue).observe(outcome.duration_s)
        if outcome.attempt == 1 and outcome.started_at_ms >= outcome.created_at_ms > 0:
            delay_s = (outcome.started_at_ms - outcome.created_at_ms) / 1000
            self.start_delay.labels(queue).observe(delay_s)
        if outcome.state is JobState.COMPLETED:
            self.completed.labels(queue).inc()
        else:
            final = "true" if outcome.state is JobState.FAILED else "false"
            self.failed.labels(queue, final).inc()

    async def refresh(self, monitor: JobMonitor) -> None:
        """Read the store-wide gauges now (called before each scrape), from the health
        report: it always answers, so a scrape during an outage still gets figures."""
        health = await monitor.health()
        self.status.set({"ok": 0, "degraded": 1}.get(health["status"], 2))
        self.problem.clear()
        for problem in health["problems"]:
            self.problem.labels(problem["code"], problem["severity"], problem["queue"] or "").set(1)
        for queue, facts in health["queues"].items():
            counts = facts["counts"]
            if counts is None:
                continue
            for state in COUNTED_STATES:
                self.jobs.labels(queue, state.value).set(counts.get(state.value, 0))
        stores = monitor.job_stores
        in_fallback = stores.redis is not None and not stores.redis_in_use
        self.fallback.set(1 if in_fallback else 0)
        fallback = health["fallback"]
        if stores.gate is not None and fallback["held_jobs"] is not None:
            # The report read the held jobs already: its figures, not a second read.
            self.held.set(fallback["held_jobs"])
            self.held_age.set(fallback["held_oldest_age_s"] or 0)
            for outcome, count in fallback["resolved"].items():
                self.held_resolved.labels(outcome).set(count)
            self.eviction_unsafe.set(0 if stores.gate.eviction_safe else 1)

    def render(self) -> bytes:
        """The exposition of every metric."""
        return generate_latest(self.registry)
