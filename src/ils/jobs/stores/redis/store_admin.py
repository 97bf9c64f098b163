"""The connections and the monitoring/operations half of the Redis job store.

``RedisJobStore`` (``stores.redis``) inherits this and adds the producer and worker
operations, as ``LocalJobStore`` does ``LocalAdmin``; the split keeps each module small.
Each operation here resolves its queue and turns an outage into
``StoreUnavailableError``; the bodies, over one queue's BullMQ keys, are the functions
of ``stores.redis.admin``. The attributes below are set by ``RedisJobStore.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis

from ils.errors import StoreUnavailableError
from ils.jobs.catalogue import Catalogue
from ils.jobs.model import JobRecord, JobState, StoreHealth
from ils.jobs.stores.base import JobFilter, JobStore, JobTiming, cleanable_state
from ils.jobs.stores.redis import admin as redis_admin
from ils.jobs.stores.redis import timings as redis_timings
from ils.jobs.stores.redis.bull import (
    COMMAND_TIMEOUT_S,
    BullQueue,
    make_client,
    unavailable_guard,
)
from ils.jobs.stores.redis.bull_piped import piped_scripts
from ils.jobs.stores.redis.connect import move_to_master
from ils.jobs.stores.redis.pipe import CommandPipe
from ils.jobs.stores.redis.wait import BLOCK_GRACE_S, MAX_BLOCK_S, MarkerWaits
from ils.redis_settings import RedisConnection

# Connections of the producers' pool (the resolutions of held jobs and the warm-up
# ping; adds go on the pipe), and its commands in flight at once: past the pool's size
# redis-py refuses the next command with MaxConnectionsError, which reads as an
# outage, so the next one waits for a slot instead.
PRODUCER_CONNECTIONS = 64


class RedisAdmin(JobStore):
    """Clients, queues and the admin operations of the Redis store."""

    kind = "redis"
    _connection: RedisConnection
    _catalogue: Catalogue
    _prefix: str
    _connect_timeout_ms: int
    _client: Redis | None
    _blocking: Redis | None
    _producer: Redis | None
    _pipe: CommandPipe | None
    _waits: MarkerWaits
    _producer_slots: asyncio.Semaphore
    _queues: dict[str, BullQueue]
    _producer_queues: dict[str, BullQueue]
    _closed: bool

    # -- connections -------------------------------------------------------------------

    def _shared(self) -> Redis:
        if self._closed:
            raise StoreUnavailableError("redis store is closed", unsent=True)
        if self._client is None:
            self._client = make_client(self._connection, self._connect_timeout_ms)
        return self._client

    def _blocking_client(self) -> Redis:
        """A client of its own for BZPOPMIN, so waiting never holds up other commands."""
        if self._closed:
            raise StoreUnavailableError("redis store is closed", unsent=True)
        if self._blocking is None:
            self._blocking = make_client(self._connection, self._connect_timeout_ms, blocking=True)
        return self._blocking

    def _producer_client(self) -> Redis:
        """The producers' client, which never resends a command: whether a failed add
        may have run must stay knowable (``StoreUnavailableError.unsent``). Its pool
        has ``PRODUCER_CONNECTIONS``; every use holds one of ``_producer_slots``."""
        if self._closed:
            raise StoreUnavailableError("redis store is closed", unsent=True)
        if self._producer is None:
            self._producer = make_client(
                self._connection,
                self._connect_timeout_ms,
                retry=False,
                max_connections=PRODUCER_CONNECTIONS,
            )
        return self._producer

    def _piped(self, bull: BullQueue) -> CommandPipe:
        """The store's pipe (``redis.pipe``): adds (single and bulk) and fetches share one
        connection and are written without waiting for each other's replies. Like the
        producers' client it never resends; it bounds its own reads, so its client has
        no socket timeout. ``bull``: a queue whose scripts it loads on each connect
        (the scripts are the same for every queue)."""
        if self._pipe is None:
            self._pipe = self._new_pipe(COMMAND_TIMEOUT_S, piped_scripts(bull))
        elif self._closed:
            raise StoreUnavailableError("redis store is closed", unsent=True)
        return self._pipe

    def _wait_pipe(self, on_connect: list[tuple[str, ...]]) -> CommandPipe:
        """A pipe for one queue's waits-and-claims (``redis.wait``): a blocked command
        holds its connection, so each queue has its own. No reply within the longest
        wait and its grace means the connection is dead."""
        return self._new_pipe(MAX_BLOCK_S + BLOCK_GRACE_S, on_connect)

    def _new_pipe(self, reply_timeout_s: float, on_connect: Sequence[Sequence[Any]]) -> CommandPipe:
        """A :class:`CommandPipe` to this store's Redis, its connection made as every
        other client's; ``on_connect`` is sent first on each new connection."""
        if self._closed:
            raise StoreUnavailableError("redis store is closed", unsent=True)
        return CommandPipe(
            make_client(self._connection, self._connect_timeout_ms, blocking=True),
            reply_timeout_s=reply_timeout_s,
            connect_timeout_s=self._connect_timeout_ms / 1000,
            on_connect=on_connect,
        )

    async def follow_master(self, master: tuple[str, int]) -> None:
        """The sentinels named a new master (``redis.master_watch``): drop every
        connection, in use or not, that reaches elsewhere, the pipes' included, and
        make those being made meanwhile land on ``master`` (``connect.move_to_master``).
        Commands in flight on them fail as on any dropped connection (a producer's add
        is resolved by its id); the next command of each connects to ``master``."""
        for client in (self._client, self._blocking, self._producer):
            if client is not None:
                await move_to_master(client, master)
        if self._pipe is not None:
            await self._pipe.drop_unless_to(master)
        await self._waits.drop_unless_to(master)

    @contextlib.asynccontextmanager
    async def _producing(self) -> AsyncIterator[None]:
        """One of ``_producer_slots`` while a producer's commands run (so the pool never
        runs out: see ``PRODUCER_CONNECTIONS``), with an outage turned into
        ``StoreUnavailableError`` as everywhere else."""
        async with self._producer_slots:
            with unavailable_guard():
                yield

    def _producer_bull(self, queue: str) -> BullQueue:
        """The queue on the producers' client (``_producer_client``)."""
        config = self._catalogue[queue]
        bull = self._producer_queues.get(queue)
        if bull is None:
            client = self._producer_client()
            bull = self._producer_queues[queue] = BullQueue(config, client, self._prefix)
        return bull

    def _bull(self, queue: str) -> BullQueue:
        config = self._catalogue[queue]  # UnknownQueueError for a key not in the catalogue
        bull = self._queues.get(queue)
        if bull is None:
            bull = self._queues[queue] = BullQueue(config, self._shared(), self._prefix)
        return bull

    # -- monitoring and operations (bodies in stores.redis.admin) -------------------------------

    async def counts(self, queue: str) -> dict[JobState, int]:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.counts(bull)

    async def list_jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.list_jobs(bull, state, offset, limit)

    async def _filtered(self, queue: str, keep: JobFilter) -> tuple[list[JobRecord], int, bool]:
        """A company's finished and delayed jobs from the company index (their sets are
        scored, so membership is one ``ZSCORE`` each, pipelined); searches and the short
        active and waiting lists by the default scan."""
        if (
            keep.company_id is None
            or keep.text is not None
            or keep.state not in (JobState.COMPLETED, JobState.FAILED, JobState.DELAYED)
        ):
            return await super()._filtered(queue, keep)
        bull = self._bull(queue)
        with unavailable_guard():
            page, total = await redis_admin.list_company_jobs(
                bull, keep.state, keep.company_id, keep.offset, keep.limit
            )
        return page, total, False

    async def get_job(self, queue: str, job_id: str) -> JobRecord | None:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.get_job(bull, job_id)

    async def retry_job(self, queue: str, job_id: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            await redis_admin.retry_job(bull, job_id)

    async def retry_failed(self, queue: str) -> int:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.retry_failed(bull)

    async def remove_job(self, queue: str, job_id: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            await redis_admin.remove_job(bull, job_id)

    async def clean(
        self, queue: str, state: JobState, *, older_than_ms: int = 0, limit: int = 0
    ) -> int:
        state = cleanable_state(state)
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.clean(bull, state, older_than_ms, limit)

    async def pause(self, queue: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            await bull.pause(True)

    async def resume(self, queue: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            await bull.pause(False)

    async def is_paused(self, queue: str) -> bool:
        bull = self._bull(queue)
        with unavailable_guard():
            return await bull.is_paused()

    async def promote(self, queue: str, job_id: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            await redis_admin.promote(bull, job_id)

    async def oldest_waiting_ms(self, queue: str) -> int | None:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.oldest_waiting_ms(bull)

    async def finished_per_minute(
        self, queue: str, since_ms: int, until_ms: int
    ) -> list[tuple[JobState, int, int]]:
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_admin.finished_per_minute(bull, since_ms, until_ms)

    async def finished_timings(
        self, queue: str, since_ms: int, until_ms: int, *, bucket_ms: int, per_bucket: int
    ) -> list[JobTiming]:
        """One Lua script over the finished sets (``stores.redis.timings``)."""
        bull = self._bull(queue)
        with unavailable_guard():
            return await redis_timings.finished_timings(
                self._shared(), bull, since_ms, until_ms, bucket_ms, per_bucket
            )

    async def health(self) -> StoreHealth:
        """PING latency and INFO facts; never raises (an outage is a result)."""
        try:
            client = self._shared()
        except Exception as err:  # closed store or unusable URL: still a report
            return StoreHealth(self.kind, False, None, {"prefix": self._prefix}, error=str(err))
        return await redis_admin.health(client, self.kind, self._prefix)
