"""The job system of one process, composed from settings: stores, gate, producer, helpers.

Composition roots (the CLI, the web app, test fixtures) call :meth:`JobSystem.open`
once and pass the object down; nothing here is a module global.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from ils.clock import Clock, SystemClock
from ils.db.engine import create_engine
from ils.db.migrations import current_revision, head_revision, upgrade_database
from ils.db.transactions import Transactions, WriteTurn
from ils.errors import ConfigurationError
from ils.jobs.admin import JobAdmin
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.events import EventBus, LocalEventBus, RedisEventBus
from ils.jobs.gate import RedisGate
from ils.jobs.helpers import JobHelpers
from ils.jobs.job_types import JobTypes, default_job_types
from ils.jobs.metrics import JobMetrics
from ils.jobs.monitor import JobMonitor
from ils.jobs.producer import Producer
from ils.jobs.schedules.sync import JobSchedulers
from ils.jobs.store_set import JobStores
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.redis.master_watch import Address, MasterWatch
from ils.jobs.stores.redis.probe import ThreadProbe
from ils.jobs.stores.redis.store import RedisJobStore
from ils.jobs.worker_context import WorkerContext
from ils.redis_settings import RedisConnection
from ils.settings import Settings


# Identity equality, and no generated repr: it would print the settings (credentials).
@dataclass(eq=False, repr=False)
class JobSystem:
    """Everything a process needs to produce, run and watch jobs."""

    settings: Settings
    catalogue: Catalogue
    job_types: JobTypes
    engine: AsyncEngine
    local: LocalJobStore
    redis: RedisJobStore | None
    gate: RedisGate | None
    producer: Producer
    #: Signals to other processes (new notifications for live streams).
    events: EventBus = field(default_factory=LocalEventBus)

    def __post_init__(self) -> None:
        #: Prometheus metrics (``/metrics``); the workers of this process feed them.
        self.metrics = JobMetrics()
        #: The stores and which of them answer now (admin and monitor ask it).
        self.job_stores = JobStores(self.local, self.redis, self.gate)
        #: Listing, finding and operating on jobs over both stores, for every company;
        #: ``admin.for_company(id)`` limits it to one company's jobs.
        self.admin = JobAdmin(self.job_stores, self.clock)
        #: Counts, health and throughput (the monitoring endpoints, ``ils jobs stats``).
        self.monitor = JobMonitor(
            self.catalogue,
            self.job_stores,
            self.producer.outbox,
            self.admin,
            self.clock,
            heartbeat_s=self.settings.worker_heartbeat_s,
            rules=self.settings.health,
        )
        #: The ``queue_...`` functions of jobs.md, one per job.
        self.helpers = JobHelpers(self.producer, self.job_types, stats=self.monitor.stats)
        #: BullMQ's job schedulers in step with the schedules table (Redis mode).
        self.schedulers = JobSchedulers(self.redis, self.gate)
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
        engine = create_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
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
            probe = redis.probe(settings.redis_probe_timeout_ms)
            gate = RedisGate(
                probe,
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
            redis_ms_per_job=settings.redis_enqueue_ms_per_job,
            fairness=settings.fairness,
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
        if connection is not None and connection.sentinels and redis is not None:
            system._follow_failovers(connection, redis, probe, events)
        return system

    def _follow_failovers(
        self,
        connection: RedisConnection,
        redis: RedisJobStore,
        probe: ThreadProbe,
        events: EventBus,
    ) -> None:
        """Watch the sentinels, and move every connection of the process (the store's,
        the gate's probe's, the event bus's) to a new master as soon as they name one
        (``redis.master_watch``)."""

        async def follow(master: Address) -> None:
            await redis.follow_master(master)
            await asyncio.to_thread(probe.reconnect)
            if isinstance(events, RedisEventBus):
                await events.follow_master(master)

        watch = MasterWatch(
            connection,
            self.settings.redis_sentinel_check_interval_s,
            follow,
            timeout_s=self.settings.redis_connect_timeout_ms / 1000,
        )
        watch.start()
        self.on_close(watch.close)

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
        return self.job_stores.mode

    @property
    def redis_in_use(self) -> bool:
        """Whether new jobs go to Redis right now."""
        return self.job_stores.redis_in_use

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
        return self.job_stores.stores()

    @property
    def write_turn(self) -> WriteTurn:
        """On SQLite, every write transaction of this process (the local store's and the
        web requests') takes this turn first, so writers queue fairly in-process."""
        return self.local.write_turn

    def worker_context(self) -> WorkerContext:
        """What workers of this process get (see :class:`WorkerContext`)."""
        return WorkerContext(
            settings=self.settings,
            clock=self.clock,
            catalogue=self.catalogue,
            job_types=self.job_types,
            helpers=self.helpers,
            sink=self.producer,
            db=Transactions(self.engine, self.write_turn),
            events=self.events,
            schedulers=self.schedulers,
            on_close=self.on_close,
        )

    def gates(self) -> dict[str, RedisGate | None]:
        """The gate of each store kind, for the runner (only Redis has one)."""
        return self.job_stores.gates()

    def reachable_stores(self) -> list[JobStore]:
        """The stores worth asking now (Redis is skipped while the gate is open)."""
        return self.job_stores.reachable_stores()

    # -- lifecycle -------------------------------------------------------------------

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
