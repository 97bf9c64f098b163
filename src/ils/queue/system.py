"""The job system of one process, composed from settings: stores, gate, producer, helpers.

Composition roots (the CLI, the web app, test fixtures) call :meth:`JobSystem.open`
once and pass the object down; nothing here is a module global.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ils.clock import Clock, SystemClock
from ils.database import WriteTurn, create_engine
from ils.errors import ConfigurationError, ILSError
from ils.migrations import current_revision, head_revision, upgrade_database
from ils.queue.admin import JobAdmin
from ils.queue.catalogue import Catalogue, build_catalogue
from ils.queue.events import EventBus, LocalEventBus, RedisEventBus
from ils.queue.gate import EVICTION_SAFE, RedisGate
from ils.queue.helpers import JobHelpers
from ils.queue.jobtypes import JobTypes, default_job_types
from ils.queue.metrics import JobMetrics
from ils.queue.model import JobOptions, JobRef, JobState, StoreHealth
from ils.queue.producer import Producer
from ils.queue.schedules import TICK_QUEUE, Schedule
from ils.queue.store import JobStore
from ils.queue.stores.local import LocalJobStore
from ils.queue.stores.redis import RedisJobStore
from ils.settings import Settings


def _problem(severity: str, code: str, message: str) -> dict[str, str]:
    return {"severity": severity, "code": code, "message": message}


def _store_health(health: StoreHealth) -> dict[str, Any]:
    return {
        "reachable": health.reachable,
        "latency_ms": None if health.latency_ms is None else round(health.latency_ms, 3),
        "error": health.error,
        **health.details,
    }


class JobSystem:
    """Everything a process needs to produce, run and watch jobs."""

    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        job_types: JobTypes,
        engine: AsyncEngine,
        local: LocalJobStore,
        redis: RedisJobStore | None,
        gate: RedisGate | None,
        producer: Producer,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.job_types = job_types
        self.engine = engine
        self.local = local
        self.redis = redis
        self.gate = gate
        self.producer = producer
        #: Signals to other processes (new notifications for live streams).
        self.events: EventBus = events or LocalEventBus()
        #: Prometheus metrics (``/metrics``); the workers of this process feed them.
        self.metrics = JobMetrics()
        self.helpers = JobHelpers(self, job_types)
        #: Listing, finding and operating on jobs over both stores, for every company;
        #: ``admin.for_company(id)`` limits it to one company's jobs.
        self.admin = JobAdmin(self, producer.clock)
        self.logger = logging.getLogger(__name__)
        self._background: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None) -> JobSystem:
        """Build the system; migrate the embedded database, check Redis's policy."""
        clock = clock or SystemClock()
        catalogue = build_catalogue(settings)
        # Where Redis is (URL, TLS, Sentinel), one description for every client; checked
        # before anything is opened, so a bad combination leaves nothing to close.
        connection = settings.redis_connection()
        job_types = default_job_types()
        url = settings.effective_database_url
        await ensure_schema(settings)
        engine = create_engine(url)
        local = LocalJobStore(
            engine,
            catalogue,
            clock=clock,
            max_stalled_count=settings.max_stalled_count,
            poll_interval_ms=settings.local_poll_interval_ms,
        )
        redis: RedisJobStore | None = None
        gate: RedisGate | None = None
        if connection is not None:
            redis = RedisJobStore(
                connection,
                catalogue,
                prefix=settings.redis_prefix,
                max_stalled_count=settings.max_stalled_count,
                connect_timeout_ms=settings.redis_connect_timeout_ms,
                dedup_ttl_ms=settings.redis_dedup_ttl_s * 1000,
            )
            gate = RedisGate(
                redis.probe(settings.redis_probe_timeout_ms),
                clock,
                settings.redis_probe_interval_s,
                failures_to_open=settings.redis_down_after_failed_probes,
                require_noeviction=settings.redis_require_noeviction,
            )
        producer = Producer(
            job_types,
            local,
            redis,
            gate,
            clock,
            max_payload_bytes=settings.max_payload_bytes,
            redis_timeout_ms=settings.redis_enqueue_timeout_ms,
        )
        # Opens the first pooled connection now: the first fallback enqueue must not pay
        # for a database connect (tens of ms on PostgreSQL).
        await local.health()
        events: EventBus = (
            RedisEventBus(
                connection,
                prefix=settings.redis_prefix,
                timeout_ms=settings.redis_connect_timeout_ms,
            )
            if connection is not None
            else LocalEventBus()
        )
        system = cls(settings, catalogue, job_types, engine, local, redis, gate, producer, events)
        await system._connect_redis()
        return system

    async def _connect_redis(self) -> None:
        gate = self.gate
        if gate is None or self.redis is None:
            return
        # Each time Redis comes back: held jobs are resolved at once, and the eviction
        # policy (read again by the gate) is complained about if it is unsafe.
        gate.on_up(self.redis.warm_up)
        gate.on_up(self.producer.outbox.relay_soon)
        gate.on_up(self._warn_unsafe_policy)
        up = await gate.check()
        if up:
            await self.redis.warm_up()
        else:
            gate.start_probing()
        if gate.eviction_safe:
            return
        if self.settings.redis_require_noeviction:
            await self.close()
            raise ConfigurationError(self._policy_message(gate.policy))
        self._warn_unsafe_policy()

    @staticmethod
    def _policy_message(policy: str | None) -> str:
        return (
            f"Redis maxmemory-policy is {policy!r}: under memory pressure Redis will "
            "silently delete queue keys (jobs lost). Set maxmemory-policy noeviction."
        )

    def _warn_unsafe_policy(self) -> None:
        if self.gate is not None and not self.gate.eviction_safe:
            message = self._policy_message(self.gate.policy)
            self.logger.warning("!" * 20 + " " + message + " " + "!" * 20)

    @property
    def mode(self) -> str:
        """``redis`` when Redis is configured, else ``local``."""
        return "redis" if self.redis is not None else "local"

    @property
    def redis_in_use(self) -> bool:
        """Whether new jobs go to Redis right now."""
        return self.gate is not None and self.gate.up

    def mode_sentence(self) -> str:
        """How jobs are stored right now, in one sentence: the words every start-up
        line (``ils worker``, ``ils serve``) uses, so operators read one phrasing."""
        if self.redis is None:
            return "local mode (jobs in the app database)"
        if self.redis_in_use:
            return "Redis mode"
        return "Redis mode, DEGRADED: Redis unreachable, using the local store until it is back"

    def stores(self) -> list[JobStore]:
        """Every store jobs may be in: Redis first, then the local store (in Redis mode
        it holds what was queued while Redis was down)."""
        return [self.redis, self.local] if self.redis is not None else [self.local]

    @property
    def write_turn(self) -> WriteTurn:
        """On SQLite, every write transaction of this process (the local store's and the
        web requests') takes this turn first, so writers queue fairly in-process."""
        return self.local.write_turn

    def gates(self) -> dict[str, RedisGate | None]:
        """The gate of each store kind, for the runner (only Redis has one)."""
        return {"redis": self.gate} if self.gate is not None else {}

    def reachable_stores(self) -> list[JobStore]:
        """The stores worth asking now (Redis is skipped while the gate is open)."""
        if self.redis is not None and self.redis_in_use:
            return [self.redis, self.local]
        return [self.local]

    # -- the JobSink the helpers use -----------------------------------------------

    async def enqueue(
        self,
        queue: str,
        name: str,
        payload: BaseModel,
        options: JobOptions,
        *,
        session: AsyncSession | None = None,
    ) -> JobRef:
        """Queue a job (see :meth:`Producer.enqueue`); the helpers call this."""
        return await self.producer.enqueue(queue, name, payload, options, session=session)

    async def counts(self, queue: str) -> dict[str, int]:
        """A queue's counts by state, summed over the reachable stores."""
        return {state.value: count for state, count in (await self.admin.counts(queue)).items()}

    async def stats(self) -> dict[str, Any]:
        """``get_queue_stats()`` of jobs.md: counts of every queue and the mode."""
        result: dict[str, Any] = {"redis": self.redis_in_use, "mode": self.mode}
        for key in self.catalogue:
            result[key] = await self.counts(key)
        return result

    async def health(self) -> dict[str, Any]:
        """Overall status and the facts behind it (the body of ``/api/queue/health``).

        ``ok``: every configured store answers and nothing below is a problem.
        ``degraded``: Redis is configured but unusable (jobs go to the local store), its
        eviction policy is unsafe, jobs are held waiting for Redis, or the local store
        fails while Redis works. ``down``: no store can take jobs. ``problems`` says
        each in a sentence with a severity.
        """
        local = await self.local.health()
        stores: dict[str, Any] = {"local": _store_health(local)}
        problems: list[dict[str, str]] = []
        redis_ok = True
        if self.redis is not None:
            redis = await self.redis.health()
            redis_ok = redis.reachable and self.redis_in_use
            stores["redis"] = _store_health(redis)
            policy = redis.details.get("maxmemory_policy")
            safe = policy in (None, EVICTION_SAFE)
            stores["redis"]["eviction_safe"] = safe
            if not redis.reachable:
                # No figures of a server that does not answer (they would be stale).
                for key in ("used_memory_human", "maxmemory", "redis_version"):
                    stores["redis"].pop(key, None)
            if not safe:
                problems.append(
                    _problem(
                        "critical",
                        "redis_eviction_unsafe",
                        f"Redis maxmemory-policy is {policy!r}: under memory pressure it deletes "
                        "queue keys. Set maxmemory-policy noeviction.",
                    )
                )
            if not redis_ok:
                problems.append(
                    _problem(
                        "critical",
                        "redis_unavailable",
                        "Redis is unavailable: new jobs go to the local store and run there.",
                    )
                )
        fallback = await self._fallback(local.reachable)
        if fallback is not None and fallback["held_jobs"]:
            problems.append(
                _problem(
                    "warning",
                    "jobs_held",
                    f"{fallback['held_jobs']} job(s) whose add to Redis had an unknown outcome "
                    "wait for Redis to answer; they run once, in Redis.",
                )
            )
        if local.reachable and redis_ok and not problems:
            status = "ok"
        elif local.reachable or (self.redis is not None and redis_ok):
            status = "degraded"
        else:
            status = "down"
        if not local.reachable:
            problems.append(
                _problem(
                    "critical",
                    "local_store_unavailable",
                    "The local job store (the app database) does not answer.",
                )
            )
        now = self.producer.clock.now_ms()
        workers = await self._live_workers(now) if local.reachable else []
        queues: dict[str, Any] = {}
        for key in self.catalogue:
            oldest = await self._oldest_waiting(key)
            queues[key] = {
                "counts": await self.counts(key) if status != "down" else None,
                "oldest_waiting_age_s": None if oldest is None else max(now - oldest, 0) / 1000,
                "workers": sum(1 for worker in workers if key in worker["queues"]),
            }
        return {
            "status": status,
            "mode": self.mode,
            "redis": self.redis_in_use,
            "stores": stores,
            "problems": problems,
            "fallback": fallback,
            "outbox_pending": await self.producer.outbox.pending() if local.reachable else None,
            "workers": workers,
            "queues": queues,
        }

    async def _fallback(self, local_reachable: bool) -> dict[str, Any] | None:
        """The fallback's state: the gate's, and the held jobs over every process."""
        if self.gate is None:
            return None
        now = self.clock.now_ms()
        held = await self.producer.outbox.held() if local_reachable else None
        oldest = None if held is None else held.oldest_since_ms
        return {
            "redis_up": self.gate.up,
            "suspect": self.gate.suspect,
            "down_since_ms": self.gate.down_since_ms,
            "reason": self.gate.reason,
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

    async def _live_workers(self, now: int) -> list[dict[str, Any]]:
        """Worker processes that recorded a heartbeat within three intervals."""
        window_ms = int(3 * self.settings.worker_heartbeat_s * 1000)
        try:
            rows = await self.local.live_workers(now - window_ms)
        except ILSError:
            return []
        return [
            {
                "id": row["worker_id"],
                "host": row["host"],
                "pid": row["pid"],
                "queues": list(row["queues"]),
                "started_at_ms": row["started_at_ms"],
                "seen_s_ago": max(now - row["seen_at_ms"], 0) / 1000,
            }
            for row in rows
        ]

    async def _oldest_waiting(self, queue: str) -> int | None:
        oldest: list[int] = []
        for store in self.reachable_stores():
            try:
                found = await store.oldest_waiting_ms(queue)
            except ILSError:
                continue
            if found is not None:
                oldest.append(found)
        return min(oldest) if oldest else None

    # -- lifecycle -------------------------------------------------------------------

    async def sync_job_schedulers(self, schedules: Sequence[Schedule]) -> int:
        """Redis mode: make BullMQ's job schedulers of the ``scheduled`` queue match the
        active schedules (paused ones have none); how many changed. No-op without Redis."""
        if self.redis is None:
            return 0
        wanted = [(s.id, s.spec, s.company_id) for s in schedules if not s.paused]
        return await self.redis.sync_job_schedulers(TICK_QUEUE, wanted)

    def start_background(self) -> None:
        """Start the outbox sweep (relays what a crash or an outage left behind)."""
        if not self._background:
            self._background.append(
                asyncio.create_task(
                    self.producer.outbox.sweep_forever(self.settings.outbox_sweep_interval_s),
                    name="outbox-sweep",
                )
            )

    @property
    def clock(self) -> Clock:
        """The clock everything of this system tells time by (injected in tests)."""
        return self.producer.clock

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` when the system closes, before its connections go: how the
        workers' own resources (an SMTP pool, a process pool) end with the process.
        Closers run newest first, like a stack of contexts."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Stop background work, run the closers, release connections."""
        while self._closers:
            closer = self._closers.pop()
            try:
                await closer()
            except Exception:
                logging.getLogger(__name__).exception("a closer failed at shutdown")
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.producer.outbox.drain_tasks()
        await self.events.close()
        if self.gate is not None:
            await self.gate.close()
        if self.redis is not None:
            await self.redis.close()
        await self.local.close()
        await self.engine.dispose()


async def ensure_schema(settings: Settings) -> None:
    """Migrate the embedded default on first start; elsewhere insist on ``ils db upgrade``.

    Production databases are migrated deliberately, not by whichever process starts
    first; the embedded SQLite file belongs to this installation alone.
    """
    url = settings.effective_database_url
    current = await current_revision(url)
    head = head_revision()
    if current == head:
        # Nothing to do, and nothing locked: a worker starting beside busy producers
        # must not take SQLite's write lock just to find the schema current.
        return
    if not settings.database_url:
        await upgrade_database(url)
        return
    raise ConfigurationError(
        f"the database is at revision {current or 'none'}, the code needs {head}: "
        "run `ils db upgrade`"
    )
