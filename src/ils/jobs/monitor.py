"""What the dashboard, the API and ``ils jobs stats`` say about the job system.

Counts, health (status, problems, the fall-back's state, live workers, queue ages) and
throughput, read over every store jobs may be in. It only reads; the composition
(:class:`ils.jobs.system.JobSystem`) hands it the stores, the gate and the outbox.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ils.clock import Clock
from ils.errors import ILSError
from ils.jobs.admin import JobAdmin
from ils.jobs.catalogue import Catalogue
from ils.jobs.gate import EVICTION_SAFE
from ils.jobs.health import (
    Problem,
    QueueFacts,
    ordered,
    overall_status,
    queue_problems,
    stopped_worker_problems,
)
from ils.jobs.model import COUNTED_STATES, JobState, StoreHealth
from ils.jobs.outbox import Outbox
from ils.jobs.store_set import JobStores
from ils.jobs.stores.base import JobStore
from ils.jobs.workers_view import WorkerInfo, WorkersView, worker_processes
from ils.settings import HealthSettings


def _store_health(health: StoreHealth) -> dict[str, Any]:
    return {
        "reachable": health.reachable,
        "latency_ms": None if health.latency_ms is None else round(health.latency_ms, 3),
        "error": health.error,
        **health.details,
    }


# Identity equality, and no generated repr (it would print the stores' connections).
@dataclass(eq=False, repr=False)
class JobMonitor:
    """Read-only figures of the job system (the bodies of the monitoring endpoints)."""

    catalogue: Catalogue
    job_stores: JobStores
    outbox: Outbox
    admin: JobAdmin
    clock: Clock
    _: KW_ONLY
    heartbeat_s: float
    rules: HealthSettings = field(default_factory=HealthSettings)

    def reachable_stores(self) -> list[JobStore]:
        """The stores worth asking now (Redis is skipped while the gate is open)."""
        return self.job_stores.reachable_stores()

    async def counts(self, queue: str) -> dict[str, int]:
        """A queue's counts by state, summed over the reachable stores."""
        return {state.value: count for state, count in (await self.admin.counts(queue)).items()}

    async def stats(self) -> dict[str, Any]:
        """``get_queue_stats()`` of jobs.md: counts of every queue and the mode."""
        result: dict[str, Any] = {
            "redis": self.job_stores.redis_in_use,
            "mode": self.job_stores.mode,
        }
        for key in self.catalogue:
            result[key] = await self.counts(key)
        return result

    async def health(self) -> dict[str, Any]:
        """Overall status and the facts behind it (the body of ``/api/queue/health``).

        It always answers: a store that fails while it is read is reported as such,
        never raised (a health check that errors during an outage tells nothing).
        ``status`` is ``down`` when no store can take jobs, ``degraded`` when there is
        any problem, else ``ok``; ``problems`` names each (rules in
        :mod:`ils.jobs.health`), critical ones first.
        """
        now = self.clock.now_ms()
        local = await self.job_stores.local.health()
        stores: dict[str, Any] = {"local": _store_health(local)}
        problems: list[Problem] = []
        redis_ok = False
        if self.job_stores.redis is not None:
            redis_ok = await self._redis_health(stores, problems)
        if not local.reachable:
            problems.append(
                Problem(
                    "critical",
                    "local_store_unavailable",
                    "The local job store (the app database) does not answer.",
                )
            )
        fallback = await self._fallback(local.reachable)
        if fallback is not None and fallback["held_jobs"]:
            problems.append(
                Problem(
                    "warning",
                    "jobs_held",
                    f"{fallback['held_jobs']} job(s) whose add to Redis had an unknown outcome "
                    "wait for Redis to answer; they run once, in Redis.",
                )
            )
        view = await self._workers(now) if local.reachable else None
        workers = [] if view is None else [_live_row(worker, now) for worker in view.live]
        if view is not None:
            silent = [(w.worker_id, w.host or "", w.seen_s_ago(now)) for w in view.silent()]
            problems.extend(stopped_worker_problems(silent))
        readable = [
            store for store in self.reachable_stores() if store is not self.job_stores.local
        ]
        if local.reachable:
            readable.append(self.job_stores.local)
        queues: dict[str, Any] = {}
        for key in self.catalogue:
            facts, counts = await self._queue_facts(key, readable, view, now)
            problems.extend(queue_problems(facts, self.rules))
            queues[key] = {
                "counts": counts,
                "paused": facts.paused,
                "oldest_waiting_age_s": facts.oldest_waiting_age_s,
                "workers": facts.live_workers,
                "max_wait_s": facts.max_wait_s,
            }
        status = overall_status(problems, can_take_jobs=local.reachable or redis_ok)
        return {
            "status": status,
            "mode": self.job_stores.mode,
            "redis": self.job_stores.redis_in_use,
            "stores": stores,
            "problems": [problem.as_dict() for problem in ordered(problems)],
            "fallback": fallback,
            "outbox_pending": await self._outbox_pending() if local.reachable else None,
            "workers": workers,
            "queues": queues,
        }

    async def _redis_health(self, stores: dict[str, Any], problems: list[Problem]) -> bool:
        """Redis's part of the report; whether new jobs can go to Redis now."""
        assert self.job_stores.redis is not None
        redis = await self.job_stores.redis.health()
        usable = redis.reachable and self.job_stores.redis_in_use
        stores["redis"] = _store_health(redis)
        policy = redis.details.get("maxmemory_policy")
        safe = policy in (None, EVICTION_SAFE)
        stores["redis"]["eviction_safe"] = safe
        if not usable:
            # No figures of a server that is not in use (they would be stale).
            for key in ("used_memory_human", "maxmemory", "redis_version"):
                stores["redis"].pop(key, None)
        if not safe:
            problems.append(
                Problem(
                    "critical",
                    "redis_eviction_unsafe",
                    f"Redis maxmemory-policy is {policy!r}: under memory pressure it deletes "
                    "queue keys. Set maxmemory-policy noeviction.",
                )
            )
        if not usable:
            problems.append(
                Problem(
                    "critical",
                    "redis_unavailable",
                    "Redis is unavailable: new jobs go to the local store and run there.",
                )
            )
        return usable

    async def _queue_facts(
        self,
        key: str,
        stores: list[JobStore],
        workers: WorkersView | None,
        now: int,
    ) -> tuple[QueueFacts, dict[str, int] | None]:
        """One queue's facts over the stores that answer (a failing one is skipped)."""
        config = self.catalogue[key]
        totals: dict[str, int] | None = None
        paused = False
        oldest: int | None = None
        done = failed = 0
        window_start = now - self.rules.failure_window_s * 1000
        for store in stores:
            try:
                counts = await store.counts(key)
                paused = paused or await store.is_paused(key)
                found = await store.oldest_waiting_ms(key)
                finished = await store.finished_per_minute(key, window_start, now + 1)
            except ILSError:
                continue
            totals = totals or {state.value: 0 for state in COUNTED_STATES}
            for state, count in counts.items():
                totals[state.value] = totals.get(state.value, 0) + count
            if found is not None:
                oldest = found if oldest is None else min(oldest, found)
            for state, _start, count in finished:
                if state is JobState.COMPLETED:
                    done += count
                else:
                    failed += count
        ready = None
        if totals is not None:
            ready = totals.get(JobState.WAITING.value, 0) + totals.get(JobState.PAUSED.value, 0)
        facts = QueueFacts(
            key=key,
            ready=ready,
            paused=paused,
            oldest_waiting_age_s=None if oldest is None else max(now - oldest, 0) / 1000,
            live_workers=0 if workers is None else workers.live_on(key),
            completed_recently=done,
            failed_recently=failed,
            max_wait_s=config.max_wait_s,
        )
        return facts, totals

    async def _outbox_pending(self) -> int | None:
        try:
            return await self.outbox.pending()
        except ILSError:
            return None

    async def _fallback(self, local_reachable: bool) -> dict[str, Any] | None:
        """The fallback's state: the gate's, and the held jobs over every process."""
        if self.job_stores.gate is None:
            return None
        now = self.clock.now_ms()
        held = await self.outbox.held() if local_reachable else None
        oldest = None if held is None else held.oldest_since_ms
        return {
            "redis_up": self.job_stores.gate.up,
            "suspect": self.job_stores.gate.suspect,
            "down_since_ms": self.job_stores.gate.down_since_ms,
            "reason": self.job_stores.gate.reason,
            "held_jobs": None if held is None else held.count,
            "held_since_ms": oldest,
            "held_oldest_age_s": None if oldest is None else max(now - oldest, 0) / 1000,
            "resolved": None if held is None else held.resolved,
        }

    async def throughput(self, queue: str, *, minutes: int = 60) -> list[dict[str, int]]:
        """Completed and failed jobs per minute over the last ``minutes``, oldest first
        (``{"minute_ms": start, "completed": n, "failed": n}``), from the jobs the
        stores still keep."""
        now = self.clock.now_ms()
        first = (now // 60_000 - minutes + 1) * 60_000
        end = first + 60_000 * minutes
        buckets = {first + 60_000 * n: [0, 0] for n in range(minutes)}
        for store in self.reachable_stores():
            for state, start, count in await store.finished_per_minute(queue, first, end):
                bucket = buckets.get(start)
                if bucket is not None:
                    bucket[0 if state is JobState.COMPLETED else 1] += count
        return [
            {"minute_ms": start, "completed": done, "failed": failed}
            for start, (done, failed) in buckets.items()
        ]

    async def _workers(self, now: int) -> WorkersView | None:
        """The worker processes of the last hour (live and gone), ``None`` when the
        app database does not answer."""
        try:
            return await worker_processes(self.job_stores.local, now, self.heartbeat_s)
        except ILSError:
            return None


def _live_row(worker: WorkerInfo, now: int) -> dict[str, Any]:
    """A live worker as the health body lists it."""
    return {
        "id": worker.worker_id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "started_at_ms": worker.started_at_ms,
        "seen_s_ago": worker.seen_s_ago(now),
    }
