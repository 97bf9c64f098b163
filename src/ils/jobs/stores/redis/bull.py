"""The typed boundary around the untyped ``bullmq`` 3.4.4 package.

Everything that touches ``bullmq`` objects or BullMQ's Redis keys lives here; the store
in ``redis.py`` only sees typed methods. Where ``bullmq`` turns a Lua status code into a
bare ``TypeError`` with a message, we run the same script through its registered
command instead, so the caller gets the numeric code (``ErrorCode``) to map.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import bullmq
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import NoBackoff

from ils.errors import StoreUnavailableError
from ils.jobs.catalogue import QueueConfig
from ils.jobs.stores.redis.codec import failure_fields, finished_retention
from ils.jobs.stores.redis.connect import async_client
from ils.jobs.stores.redis.decode import MAX_TIME_MS
from ils.jobs.stores.redis.pipe import NotSentError
from ils.jobs.stores.redis.placeholder import lenient_int
from ils.jobs.stores.redis.replies import NextJob, finish_outcome
from ils.jobs.stores.redis.schedulers import use_our_cron
from ils.redis_settings import RedisConnection

# BullMQ's Lua status codes (bullmq.error_code.ErrorCode).
JOB_NOT_EXIST = -1
JOB_LOCK_NOT_EXIST = -2
JOB_NOT_IN_STATE = -3
JOB_LOCK_MISMATCH = -6
#: Codes meaning "this token does not hold this active job any more".
LOCK_LOST_CODES = frozenset(
    {JOB_NOT_EXIST, JOB_LOCK_NOT_EXIST, JOB_NOT_IN_STATE, JOB_LOCK_MISMATCH}
)

#: Errors that mean "Redis cannot serve us now": callers fall back to the local store.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    TimeoutError,
    OSError,
)
# A command on the shared connection that takes longer than this is treated as an outage.
COMMAND_TIMEOUT_S = 10.0

# Claims a waiting job that BullMQ's stalled check marked for deferred failure ("defa"),
# exactly as moveToActive claims a job (active list + lock), so that the regular
# moveToFinished script can fail it at once instead of at the next fetch.
CLAIM_DEFERRED_FAILURE_LUA = """
if redis.call("HEXISTS", KEYS[3], "defa") == 0 then return 0 end
if redis.call("LREM", KEYS[1], -1, ARGV[1]) == 0 then return 0 end
redis.call("LPUSH", KEYS[2], ARGV[1])
redis.call("SET", KEYS[3] .. ":lock", ARGV[2], "PX", ARGV[3])
return 1
"""


@contextlib.contextmanager
def unavailable_guard() -> Iterator[None]:
    """Turn connection-level failures into :class:`StoreUnavailableError`.

    The message names the failure class and the socket error only, never a command or
    its arguments (which may carry payload data); the original stays as ``__cause__``.
    """
    try:
        yield
    except UNAVAILABLE_ERRORS as err:
        raise StoreUnavailableError(
            f"redis unavailable: {type(err).__name__}: {err}", unsent=never_sent(err)
        ) from err
    except redis_errors.ResponseError as err:
        # ``min-replicas-to-write`` refusing writes: a master cut off from its replicas,
        # typically the old one of a Sentinel fail-over, whose writes would be thrown
        # away when it is demoted. An outage, not a bug. Not ``unsent``: a command
        # before the refused one may have been applied.
        if not str(err).startswith("NOREPLICAS"):
            raise
        raise StoreUnavailableError(
            "redis unavailable: NOREPLICAS (not enough replicas to write)"
        ) from err


def never_sent(err: BaseException) -> bool:
    """Whether ``err`` proves the command never reached Redis: the connection was
    refused or could not be made (redis-py says "connecting to" / "Timeout connecting"),
    or no sentinel named a master to connect to.

    Only meaningful on a client that does not retry a command on a dropped connection
    (see ``make_client(retry=False)``): there the failure of a reconnect would hide
    that the first try may have run.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | MasterNotFoundError | NotSentError):
            return True
        text = str(seen)
        if isinstance(seen, redis_errors.ConnectionError | redis_errors.TimeoutError) and (
            "connecting to" in text or "Timeout connecting" in text
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def make_client(
    connection: RedisConnection | str,
    connect_timeout_ms: int,
    *,
    blocking: bool = False,
    retry: bool = True,
    max_connections: int | None = None,
) -> Redis:
    """A Redis client that fails fast instead of retrying for minutes.

    ``bullmq`` would build one with 20 exponential retries (up to 20 s apart), which
    would hold a request or a worker hostage during an outage; we retry once, at once,
    on a dropped connection only (a stale pooled socket after a Redis restart), never
    on a timeout (a Lua script may have run). The blocking client has no socket
    timeout (its BZPOPMIN calls are bounded by ``asyncio.wait_for``) and no retry: a
    retry would reconnect and block again after ``close()`` dropped the connection.
    The producers' client (``retry=False``) never retries either: an add resent after a
    dropped connection could hide that the first one ran (see ``never_sent``); adds are
    idempotent by job id, and an uncertain one is resolved by id later.

    Where Redis is (URL, TLS, Sentinel) comes from ``connection``; with Sentinel,
    redis-py runs the connect (master look-up included) under the same retry policy.

    ``max_connections`` bounds the pool (see ``connect.async_client``).

    Replies are decoded with ``surrogateescape``: any producer on the shared Redis can
    write bytes that are not UTF-8 into a job, and a strict decoder would raise on every
    read of that job (the fetch, the lists, the job page, the removal). Escaped, the
    bytes round-trip unchanged and ``stores.redis.decode`` names them.
    """
    return async_client(
        connection,
        decode_responses=True,
        encoding_errors="surrogateescape",
        connect_timeout_s=connect_timeout_ms / 1000,
        socket_timeout_s=None if blocking else COMMAND_TIMEOUT_S,
        retry=Retry(
            NoBackoff(),
            0 if blocking or not retry else 1,
            supported_errors=(redis_errors.ConnectionError,),
        ),
        max_connections=max_connections,
    )


class BullQueue:
    """One queue's BullMQ objects behind typed methods.

    A ``Queue`` serves producers and admins; a ``Worker`` that never runs its own loop
    (``autorun`` off, no processor) serves the fetch path. Its loop ignores rate limits
    after the first window, so we only borrow its options (limiter, lock duration),
    which BullMQ's finish scripts read from ``job.queue.opts`` to fetch the next job.
    """

    def __init__(self, config: QueueConfig, client: Redis, prefix: str) -> None:
        self.config = config
        connection = {"connection": client, "prefix": prefix}
        self.queue: Any = bullmq.Queue(config.name, connection)
        worker_opts: dict[str, Any] = {
            **connection,
            "autorun": False,
            "lockDuration": config.lock_duration_ms,
            "stalledInterval": config.stalled_interval_ms,
        }
        if config.rate_limit is not None:
            worker_opts["limiter"] = {
                "max": config.rate_limit.max,
                "duration": config.rate_limit.duration_ms,
            }
        self.worker: Any = bullmq.Worker(config.name, None, worker_opts)
        # Cron schedules fire at the times ils.jobs.schedules.cron computes, in both modes.
        use_our_cron(self.queue, self.worker)
        self.scripts: Any = self.queue.backend.scripts
        self.keys: Mapping[str, str] = self.scripts.keys
        self._client = client
        self._claim_deferred = client.register_script(CLAIM_DEFERRED_FAILURE_LUA)

    def job_key(self, job_id: str) -> str:
        """The hash key of one job (``bull:<queue>:<id>``)."""
        return str(self.scripts.toKey(job_id))

    async def known(self, job_id: str) -> bool:
        """Whether the job's hash or its deduplication key (``bull:<queue>:de:<id>``,
        which outlives the job's removal by retention for its TTL) exists."""
        found = await self._client.exists(self.job_key(job_id), f"{self.keys['']}de:{job_id}")
        return int(found) > 0

    async def _run(self, script: str, keys: list[Any], args: list[Any]) -> Any:
        return await self.scripts.commands[script](keys=keys, args=args)

    # -- producers ---------------------------------------------------------------------

    async def add(self, name: str, data: Mapping[str, Any], opts: dict[str, Any]) -> str:
        """Add one job; an existing custom id returns that id and adds nothing."""
        job = await self.queue.add(name, dict(data), opts)
        return str(job.id)

    # -- workers -----------------------------------------------------------------------

    def _job(self, job_id: str, name: str, opts: Mapping[str, Any], attempts_made: int) -> Any:
        # Bound to the Worker: moveToFinished reads the fetch-next limiter from job.queue.opts.
        job = bullmq.Job(self.worker, name, None, dict(opts))
        job.id = job_id
        job.attemptsMade = attempts_made
        return job

    async def finish(
        self,
        job_id: str,
        name: str,
        opts: Mapping[str, Any],
        attempts_made: int,
        token: str,
        *,
        completed: bool,
        value: Any,
        fetch_next: bool,
        stacktrace: Sequence[str] = (),
    ) -> int | NextJob:
        """moveToFinished (:meth:`finish_args`): a negative status code, or what it
        fetched next."""
        keys, args = self.finish_args(
            job_id,
            name,
            opts,
            attempts_made,
            token,
            completed=completed,
            value=value,
            fetch_next=fetch_next,
            stacktrace=stacktrace,
        )
        return finish_outcome(await self._run("moveToFinished", keys, args))

    def finish_args(
        self,
        job_id: str,
        name: str,
        opts: Mapping[str, Any],
        attempts_made: int,
        token: str,
        *,
        completed: bool,
        value: Any,
        fetch_next: bool,
        stacktrace: Sequence[str] = (),
    ) -> tuple[list[Any], list[Any]]:
        """``moveToFinished``'s keys and arguments, as ``bullmq`` builds them. Every
        finish is kept as the job's options or the queue's retention say
        (``finished_retention``), and every failure for good records ``value`` as its
        failed reason with ``stacktrace`` (``failure_fields``): no caller spells either
        out again."""
        job = self._job(job_id, name, opts, attempts_made)
        keep = finished_retention(opts, self.config, completed=completed)
        if completed:
            built = self.scripts.moveToCompletedArgs(job, value, keep, token, fetch_next)
        else:
            fields = failure_fields(value, list(stacktrace))
            built = self.scripts.moveToFailedArgs(job, value, keep, token, fetch_next, fields)
        return list(built[0]), list(built[1])

    async def move_to_delayed(
        self, job_id: str, token: str, delay_ms: int, fields: Mapping[str, str], timestamp: int
    ) -> int:
        """moveToDelayed for a retry back-off; returns the script's status code."""
        opts = {"fieldsToUpdate": dict(fields)}
        keys, args = self.scripts.moveToDelayedArgs(job_id, timestamp, token, delay_ms, opts)
        raw = await self._run("moveToDelayed", keys, args)
        return raw if isinstance(raw, int) else 0

    async def retry_now(
        self, job_id: str, token: str, lifo: bool, fields: Mapping[str, str]
    ) -> int:
        """retryJob: back to waiting at once (a zero back-off); returns the status code."""
        opts = {"fieldsToUpdate": dict(fields)}
        keys, args = self.scripts.retryJobArgs(job_id, lifo, token, opts)
        return int(await self._run("retryJob", keys, args))

    async def claim_deferred_failure(self, job_id: str, token: str) -> bool:
        """Lock a waiting job flagged ``defa`` by the stalled check, to fail it now."""
        keys = [self.keys["wait"], self.keys["active"], self.job_key(job_id)]
        args: list[str | int] = [job_id, token, self.config.lock_duration_ms]
        return int(await self._claim_deferred(keys=keys, args=args)) == 1

    async def extend_locks(self, job_ids: list[str], tokens: list[str]) -> list[str]:
        """extendLocks: the ids whose lock could not be renewed."""
        duration = self.config.lock_duration_ms
        failed = await self.worker.backend.extendLocks(job_ids, tokens, duration)
        return [str(job_id) for job_id in failed]

    async def move_stalled_to_wait(self, max_stalled_count: int) -> list[str]:
        """One pass of BullMQ's two-pass stalled check (see ``recover_stalled``)."""
        moved = await self.worker.backend.moveStalledJobsToWait(
            max_stalled_count, self.config.stalled_interval_ms
        )
        return [str(job_id) for job_id in moved]

    async def update_progress(self, job_id: str, progress: Any) -> int:
        """updateProgress (BullMQ does not check the lock); returns the status code.

        The keys mirror ``Scripts.updateProgress``, which only raises a bare TypeError.
        """
        keys = [self.job_key(job_id), self.keys["events"], self.keys["meta"]]
        args = [job_id, json.dumps(progress, separators=(",", ":"), allow_nan=False)]
        return int(await self._run("updateProgress", keys, args))

    async def add_log(self, job_id: str, line: str, keep_logs: int) -> None:
        """Append to the job's log list, trimmed to ``keepLogs`` when the job sets it."""
        await self.queue.backend.addLog(job_id, line, keep_logs)

    # -- monitoring and operations -------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Raw counts by BullMQ type (``wait``, ``paused`` list, ``prioritized``...)."""
        types = ["wait", "paused", "prioritized", "active", "completed", "failed", "delayed"]
        values = await self.queue.backend.getCounts(types)
        return {name: int(value or 0) for name, value in zip(types, values, strict=True)}

    async def job_hash(self, job_id: str) -> dict[str, str]:
        """The job's hash (empty when the job does not exist)."""
        raw = await self._client.hgetall(self.job_key(job_id))
        return {str(key): str(value) for key, value in raw.items()}

    async def job_opts(self, job_id: str) -> str | None:
        """The job's raw ``opts`` JSON."""
        value = await self._client.hget(self.job_key(job_id), "opts")
        return None if value is None else str(value)

    async def job_hashes(self, job_ids: Sequence[str]) -> list[dict[str, str]]:
        """Several job hashes in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.job_key(job_id))
            return [dict(raw) for raw in await pipe.execute()]

    async def newest_finished(self, key: str, offset: int, limit: int) -> list[str]:
        """Ids of a finished set, latest finish first, one page."""
        if limit <= 0:
            return []
        ids = await self._client.zrevrange(key, max(offset, 0), max(offset, 0) + limit - 1)
        return [job_id.decode() if isinstance(job_id, bytes) else str(job_id) for job_id in ids]

    def company_key(self, company_id: str) -> str:
        """The sorted set of a company's job ids (scored by when they were added)."""
        base = self.keys["completed"].rsplit(":", 1)[0]
        return f"{base}:ils:company:{company_id}"

    async def index_companies(
        self, stamped: Sequence[tuple[str, str]], now_ms: int, cap: int
    ) -> None:
        """Add ``(company, job id)`` pairs to the company sets, each kept to ``cap``."""
        async with self._client.pipeline(transaction=False) as pipe:
            for command in self.company_index_commands(stamped, now_ms, cap):
                pipe.execute_command(*command)
            await pipe.execute()

    def company_index_commands(
        self, stamped: Sequence[tuple[str, str]], now_ms: int, cap: int
    ) -> list[tuple[Any, ...]]:
        """The commands of :meth:`index_companies` (also sent on the producers' pipe)."""
        commands: list[tuple[Any, ...]] = []
        for company_id, job_id in stamped:
            key = self.company_key(company_id)
            commands += [("ZADD", key, now_ms, job_id), ("ZREMRANGEBYRANK", key, 0, -cap - 1)]
        return commands

    async def company_page(
        self, state_key: str, company_id: str, offset: int, limit: int
    ) -> tuple[list[str], int]:
        """A page of the company's ids that are in ``state_key`` (a set scored by finish
        or due time), highest score first, and their number: ``ZINTERSTORE`` into a
        scratch key (weights 0 and 1 keep the state's score), read, delete, atomically."""
        scratch = f"{self.company_key(company_id)}:scratch:{uuid.uuid4().hex}"
        start = max(offset, 0)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zinterstore(scratch, {self.company_key(company_id): 0, state_key: 1})
            pipe.zrevrange(scratch, start, start + max(limit, 1) - 1)
            pipe.zcard(scratch)
            pipe.delete(scratch)
            _, ids, total, _ = await pipe.execute()
        page = [job_id.decode() if isinstance(job_id, bytes) else str(job_id) for job_id in ids]
        return (page if limit > 0 else []), int(total)

    async def count_in_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[int]:
        """``ZCOUNT key start (end`` for each range, in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for key, start, end in ranges:
                pipe.zcount(key, start, f"({end}")
            return [int(count) for count in await pipe.execute()]

    async def timestamps(self, job_ids: Sequence[str]) -> list[int]:
        """Creation times (epoch ms) of several jobs in one round trip; 0 when gone or
        unreadable."""
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(self.job_key(job_id), "timestamp")
            # Any producer may have written the field: "inf" or text reads as unknown.
            return [lenient_int(value, MAX_TIME_MS) for value in await pipe.execute()]

    async def oldest_pending_ids(self, sample: int) -> list[str]:
        """Waiting ids most likely to be the oldest: the tails of the lists (where
        FIFO jobs age) and the head of the prioritized set."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.lrange(self.keys["wait"], -sample, -1)
            pipe.lrange(self.keys["paused"], -sample, -1)
            pipe.zrange(self.keys["prioritized"], 0, sample - 1)
            replies = await pipe.execute()
        return [str(job_id) for reply in replies for job_id in reply]

    async def ids(self, bull_type: str) -> list[str]:
        """Every job id of one BullMQ type, in the type's own order."""
        ranged = await self.queue.backend.getRanges([bull_type], 0, -1, False)
        return [str(job_id) for job_id in ranged]

    async def state(self, job_id: str) -> str:
        """BullMQ's name for the job's state (``unknown`` when in no set)."""
        return str(await self.queue.backend.getState(job_id))

    async def logs(self, job_id: str) -> list[str]:
        """The job's log lines, oldest first."""
        result = await self.queue.backend.getJobLogs(job_id)
        return [str(line) for line in result["logs"]]

    async def reprocess_failed(self, job_id: str, *, lifo: bool) -> int:
        """reprocessJob from ``failed`` with attempts reset; returns the status code.

        The keys mirror ``Scripts.reprocessJob``, which only raises a bare TypeError.
        """
        k = self.keys
        keys = [
            self.job_key(job_id),
            k["events"],
            k["failed"],
            k["wait"],
            k["meta"],
            k["active"],
            k["marker"],
            k["prioritized"],
            k["pc"],
        ]
        args = [job_id, "RPUSH" if lifo else "LPUSH", "failedReason", "failed", "1", "1"]
        return int(await self._run("reprocessJob", keys, args))

    async def remove(self, job_id: str) -> int:
        """removeJob: 1 removed, 0 locked by a worker."""
        return int(await self.queue.backend.remove(job_id, True))

    async def promote(self, job_id: str) -> int:
        """promote: 0 done, -3 not delayed."""
        keys, args = self.scripts.promoteArgs(job_id)
        return int(await self._run("promote", keys, args))

    async def clean(self, bull_type: str, grace_ms: int, limit: int) -> list[str]:
        """cleanJobsInSet: the ids removed."""
        removed = await self.queue.backend.cleanJobsInSet(bull_type, grace_ms, limit)
        return [str(job_id) for job_id in removed]

    async def pause(self, paused: bool) -> None:
        """Pause (meta flag) or resume the queue for every worker, Node's included."""
        await self.queue.backend.pause(paused)

    async def is_paused(self) -> bool:
        """Whether the queue's meta hash carries the paused flag."""
        return bool(await self.queue.backend.isPaused())
