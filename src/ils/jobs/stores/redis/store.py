"""The Redis job store: real BullMQ jobs, shared both ways with the Node BullMQ service.

Jobs are written and moved only by BullMQ's own Lua scripts (through the ``bullmq``
3.4.4 package, wrapped in ``redis.bull``), so queue names, job names, payload JSON,
priorities, attempts, back-off and retention mean the same to a Node ``Worker`` as to
ours. We own the worker loop: the Python ``Worker``'s run loop ignores rate limits
after the first window, so each fetch is one atomic ``moveToActive`` carrying the
queue's limiter and lock duration, and completion/failure call ``moveToFinished`` /
``moveToDelayed`` / ``retryJob`` directly with our own retry decision.

This module holds the producer and worker operations; the connections and the
monitoring and admin operations are in ``redis_store_admin`` (their bodies in
``redis_admin``). Only this module and its ``redis_*`` helpers import ``bullmq``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ils.errors import (
    JobNotFoundError,
    JobSystemError,
    LockLostError,
)
from ils.jobs.catalogue import Catalogue, QueueConfig
from ils.jobs.model import ClaimedJob, Fetch, JobState, NewJob
from ils.jobs.schedules.cron import ScheduleSpec
from ils.jobs.stores.redis.bull import (
    JOB_NOT_EXIST,
    LOCK_LOST_CODES,
    BullQueue,
    unavailable_guard,
)
from ils.jobs.stores.redis.bull_piped import (
    AddCommand,
    add_command,
    checked_replies,
    complete_command,
    move_to_active_command,
    send_checked,
    send_script,
)
from ils.jobs.stores.redis.codec import (
    attempts_of,
    bull_options,
    decode_options,
    failure_fields,
    next_stacktrace,
    now_ms,
    retry_delay_ms,
    validate_new_job,
)
from ils.jobs.stores.redis.connect import as_connection
from ils.jobs.stores.redis.decode import UndecodableJobError, decode_job
from ils.jobs.stores.redis.failing import (
    OUTAGES,
    StalledLog,
    fail_deferred,
    fail_if_flagged,
    fail_undecodable,
)
from ils.jobs.stores.redis.pipe import CommandPipe
from ils.jobs.stores.redis.probe import ThreadProbe
from ils.jobs.stores.redis.replies import NextJob, finish_outcome, next_job
from ils.jobs.stores.redis.schedulers import advance
from ils.jobs.stores.redis.schedulers import sync as sync_schedulers
from ils.jobs.stores.redis.store_admin import PRODUCER_CONNECTIONS, RedisAdmin
from ils.jobs.stores.redis.wait import MarkerWaits, wait_on_marker
from ils.redis_settings import RedisConnection

# Claimed jobs whose options we keep in memory between fetch and finish (saves a read).
MAX_REMEMBERED_CLAIMS = 10_000
# Deferred-failure jobs (stalled too often) one fetch may fail before giving up for now.
MAX_DEFERRED_PER_FETCH = 100


def company_index_cap(config: QueueConfig) -> int:
    """How many ids a company set keeps: every job retention could still hold, and
    room for the unfinished ones."""
    return config.keep_completed.count + config.keep_failed.count + 10_000


class RedisJobStore(RedisAdmin):
    """:class:`JobStore` over BullMQ queues in Redis (see the module docstring)."""

    kind = "redis"
    claims_on_wake = True

    def __init__(
        self,
        redis_url: RedisConnection | str,
        catalogue: Catalogue,
        *,
        prefix: str = "bull",
        max_stalled_count: int = 1,
        connect_timeout_ms: int = 500,
        dedup_ttl_ms: int = 600_000,
    ) -> None:
        # Where Redis is (a URL, TLS, Sentinel): every client below is made from it.
        self._connection = as_connection(redis_url)
        self._dedup_ttl_ms = dedup_ttl_ms
        self._catalogue = catalogue
        self._prefix = prefix
        self._max_stalled_count = max_stalled_count
        self._connect_timeout_ms = connect_timeout_ms
        self._client = None
        self._blocking = None
        self._producer = None
        self._pipe = None
        self._producer_slots = asyncio.Semaphore(PRODUCER_CONNECTIONS)
        self._queues = {}
        self._producer_queues = {}
        self._claims: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._stalled_log = StalledLog(MAX_REMEMBERED_CLAIMS)
        self._waits = MarkerWaits(self._blocking_client, self._wait_pipe)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close both clients; a pending ``wait_for_work`` returns at once."""
        self._closed = True
        self._queues.clear()
        self._producer_queues.clear()
        self._claims.clear()
        for client in (self._blocking, self._client, self._producer):
            if client is not None:
                await client.aclose()
        self._client = self._blocking = self._producer = None
        await self._waits.close()
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            await pipe.close()

    # -- producers -----------------------------------------------------------------------

    async def add(self, queue: str, job: NewJob) -> str:
        return (await self.add_bulk(queue, [job]))[0]

    async def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        ids = await self.start_add_bulk(queue, jobs)
        unindexed = [
            (job, job_id)
            for job, job_id in zip(jobs, ids, strict=True)
            if job.options.company_id and job.options.job_id is None
        ]
        if unindexed:
            # Ids of Redis's own making: the company index could not go with the add.
            await self._index_companies(self._producer_bull(queue), unindexed)
        return ids

    def start_add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> asyncio.Future[list[str]]:
        """Send the adds on the store's pipe (``redis.pipe``) and return, at once, the
        future of their job ids, which fails as :meth:`add_bulk` would raise. The caller
        bounds its own wait (the enqueue budget, ``Producer``); the adds go on
        regardless. More than one job are added in one MULTI/EXEC, all or none, as
        BullMQ's ``addBulk`` adds them.

        The jobs' company index entries go in the same write. A bad job raises here,
        before anything is sent.
        """
        bull = self._producer_bull(queue)
        for job in jobs:
            validate_new_job(queue, job)
        adds = [add_command(bull, job.name, job.data, self._options(bull, job)) for job in jobs]
        stamped = [
            (job.options.company_id, job.options.job_id)
            for job in jobs
            if job.options.company_id and job.options.job_id
        ]
        commands = [add.command for add in adds]
        if stamped:
            cap = company_index_cap(bull.config)
            commands += bull.company_index_commands(stamped, now_ms(), cap)
        pipe = self._piped(bull)
        if len(jobs) == 1:
            return pipe.send(commands, lambda outcome: self._added(pipe, adds, outcome))
        in_multi = [("MULTI",), *commands, ("EXEC",)]
        return pipe.send(
            in_multi, lambda outcome: self._added(pipe, adds, checked_replies(pipe, outcome)[-1])
        )

    @staticmethod
    def _added(
        pipe: CommandPipe, adds: Sequence[AddCommand], outcome: list[Any] | BaseException
    ) -> list[str]:
        """The job ids of a pipe's adds (their replies first, in order, then the company
        index's), or their failure as ``StoreUnavailableError``."""
        replies = checked_replies(pipe, outcome)
        return [add.job_id(reply) for add, reply in zip(adds, replies, strict=False)]

    def _options(self, bull: BullQueue, job: NewJob) -> dict[str, Any]:
        """BullMQ options, with a deduplication key on the job's id kept for
        ``dedup_ttl_ms``: an add repeated by id after retention removed the finished
        job (``add_once``) is then still a no-op instead of a second run."""
        opts = bull_options(bull.config, job)
        # Dated on the local store's millisecond (the clock's floor): bullmq rounds
        # time.time() * 1000, which can date a job a millisecond after one the local
        # store adds next, and "newest first" over both stores would invert them.
        opts["timestamp"] = now_ms()
        if job.options.job_id is not None and self._dedup_ttl_ms > 0:
            opts["deduplication"] = {"id": job.options.job_id, "ttl": self._dedup_ttl_ms}
        return opts

    async def warm_up(self) -> None:
        """Open the producers' connections now (the pipe's and the pool's first): the
        first enqueue must not spend its budget on a TCP connect (and be held for it).
        Silent when Redis is down."""
        if self._closed:
            return
        client = self._producer_client()
        pipe = self._piped(self._producer_bull(next(iter(self._catalogue.keys()))))
        for _ in range(2):  # a pooled socket left from before a restart fails once
            try:
                async with self._producer_slots:
                    await asyncio.wait_for(client.ping(), 2.0)
                await asyncio.wait_for(send_checked(pipe, [("PING",)]), 2.0)
                return
            except Exception as err:  # an outage is the gate's business, not the warm-up's
                logging.getLogger(__name__).debug("warm-up ping: %s", type(err).__name__)

    async def add_once(self, queue: str, job: NewJob) -> bool:
        """Make sure ``job`` (with its id) is in Redis; whether it was there already.

        For a job whose first add had an unknown outcome. "There" means its hash or
        its deduplication key exists (the job may have run and been removed by
        retention). The add that follows is a no-op if the first add lands in between.
        """
        assert job.options.job_id is not None
        bull = self._producer_bull(queue)
        validate_new_job(queue, job)
        async with self._producing():
            found = await bull.known(job.options.job_id)
            if not found:
                job_id = await bull.add(job.name, job.data, self._options(bull, job))
                await self._index_companies(bull, [(job, job_id)])
            return found

    def probe(self, timeout_ms: int) -> ThreadProbe:
        """A blocking PING (with the eviction policy) on a connection of its own, for
        the gate to run in a thread: its timing is Redis's and the network's, never
        time spent waiting for this process's event loop."""
        return ThreadProbe(self._connection, timeout_ms)

    async def _index_companies(self, bull: BullQueue, added: Sequence[tuple[NewJob, str]]) -> None:
        """Remember the company's jobs in a sorted set beside BullMQ's keys (BullMQ has
        no index by company), bounded to what retention could still hold."""
        stamped = [
            (job.options.company_id, job_id) for job, job_id in added if job.options.company_id
        ]
        if stamped:
            await bull.index_companies(stamped, now_ms(), company_index_cap(bull.config))

    # -- workers -------------------------------------------------------------------------

    async def fetch(self, queue: str, token: str) -> Fetch:
        bull = self._bull(queue)
        pipe = self._piped(bull)
        with unavailable_guard():
            # On the pipe: no pooled connection to take, no write task (the fetch's
            # round trip fell from 0.68 to 0.58 ms p50 at 100 jobs/s offered).
            replies = await send_checked(pipe, [move_to_active_command(bull, token)])
            return await self._claimed(bull, next_job(replies[0]), token)

    async def _claimed(self, bull: BullQueue, nxt: NextJob, token: str) -> Fetch:
        """Turn a script's fetch reply into a :class:`Fetch`, failing flagged jobs.

        A job BullMQ's stalled check flagged (``defa``) is failed here, as BullMQ's
        Worker does when it receives one, and so is a job that cannot be decoded
        (``stores.redis.decode``): for good, with the problem as its reason, since no
        retry can make it readable. The next job is fetched in the same call.
        """
        for _ in range(MAX_DEFERRED_PER_FETCH):
            job_id, raw = nxt.job_id, nxt.data
            if raw is None or job_id is None:
                return _no_job(nxt)
            if "defa" in raw:
                nxt = await fail_deferred(bull, job_id, raw, token, fetch_next=True)
                continue
            try:
                record, opts = decode_job(bull.config.key, job_id, raw, JobState.ACTIVE)
            except UndecodableJobError as exc:
                nxt = await fail_undecodable(bull, job_id, raw, token, str(exc), fetch_next=True)
                continue
            self._remember(bull, job_id, token, opts)
            if "rjk" in raw:
                await self._advance_scheduler(bull, job_id, raw)
            return Fetch(ClaimedJob(record, token))
        return Fetch(None, 0)

    async def _advance_scheduler(self, bull: BullQueue, job_id: str, raw: dict[str, str]) -> None:
        """Make the next tick of the job scheduler that produced this one. A failure is
        logged, not raised: the tick in hand must still run (BullMQ's Worker does the
        same); the scheduler sync re-creates a scheduler that lost its next tick."""
        try:
            await advance(bull.worker, job_id, raw)
        except Exception as exc:  # anything from BullMQ's scheduler code
            logging.getLogger(__name__).warning(
                "job scheduler %s not advanced: %s", raw.get("rjk"), type(exc).__name__
            )

    async def sync_job_schedulers(
        self, queue: str, wanted: Sequence[tuple[str, ScheduleSpec, str | None]]
    ) -> int:
        """Make ``queue``'s BullMQ job schedulers exactly ``wanted``."""
        with unavailable_guard():
            return await sync_schedulers(self._bull(queue).queue, wanted)

    def _remember(self, bull: BullQueue, job_id: str, token: str, opts: dict[str, Any]) -> None:
        if len(self._claims) >= MAX_REMEMBERED_CLAIMS:
            self._claims.pop(next(iter(self._claims)))
        self._claims[(bull.config.key, job_id, token)] = opts

    async def _opts(self, bull: BullQueue, job: ClaimedJob, *, forget: bool) -> dict[str, Any]:
        """The claimed job's BullMQ options: remembered from fetch, else read again."""
        key = (bull.config.key, job.id, job.token)
        opts = self._claims.pop(key, None) if forget else self._claims.get(key)
        if opts is None:
            opts = decode_options(await bull.job_opts(job.id))
        return opts

    async def complete(
        self, queue: str, job: ClaimedJob, result: Any, *, fetch_next: bool = False
    ) -> Fetch | None:
        bull = self._bull(queue)
        pipe = self._piped(bull)
        with unavailable_guard():
            opts = await self._opts(bull, job, forget=True)
            command = complete_command(bull, job, opts, result, fetch_next=fetch_next)
            # On the pipe, as the fetch: redis-py's pooled round trip was a fifth of a
            # drained no-op job's CPU in the worker (py-spy, 2026-12-06).
            outcome = finish_outcome(await send_script(pipe, command))
            if isinstance(outcome, int):
                raise _finish_error(queue, job.id, outcome)
            return await self._claimed(bull, outcome, job.token) if fetch_next else None

    async def _fail(
        self, queue: str, job: ClaimedJob, reason: str, stacktrace: str | None, retry: bool
    ) -> JobState:
        bull = self._bull(queue)
        with unavailable_guard():
            opts = await self._opts(bull, job, forget=True)
            made = job.record.attempts_made
            traces = next_stacktrace(job.record.stacktrace, stacktrace, opts)
            if retry and made + 1 < attempts_of(opts):
                fields = failure_fields(reason, traces)
                delay = retry_delay_ms(opts, made + 1, bull.config)
                if delay > 0:
                    code = await bull.move_to_delayed(job.id, job.token, delay, fields, now_ms())
                    state = JobState.DELAYED
                else:
                    code = await bull.retry_now(job.id, job.token, bool(opts.get("lifo")), fields)
                    state = JobState.WAITING
            else:
                outcome = await bull.finish(
                    job.id,
                    job.record.name,
                    opts,
                    made,
                    job.token,
                    completed=False,
                    value=reason,
                    fetch_next=False,
                    stacktrace=traces,
                )
                code = outcome if isinstance(outcome, int) else 0
                state = JobState.FAILED
        if code < 0:
            raise _finish_error(queue, job.id, code)
        return state

    async def extend_locks(self, queue: str, jobs: Sequence[ClaimedJob]) -> list[str]:
        bull = self._bull(queue)
        if not jobs:
            return []
        with unavailable_guard():
            return await bull.extend_locks([j.id for j in jobs], [j.token for j in jobs])

    async def recover_stalled(self, queue: str) -> list[str]:
        """Run one pass of BullMQ's stalled check (``moveStalledJobsToWait``).

        BullMQ needs two passes: a pass first moves the active jobs whose lock is gone
        and that the previous pass marked, then marks every active job as a suspect
        (a lock extension clears the mark). A pass runs at most once per
        ``stalled_interval_ms`` across all processes (Node's workers included), so
        a dead worker's job returns to waiting between one and two intervals after
        its lock expired; calls in between return ``[]``. Jobs over
        ``max_stalled_count`` are failed here rather than at their next fetch; one that
        cannot be failed is logged once (``StalledLog``) and the pass goes on to the
        others, as only an outage stops it.
        """
        bull = self._bull(queue)
        with unavailable_guard():
            moved = await bull.move_stalled_to_wait(self._max_stalled_count)
            for job_id in moved:
                try:
                    await fail_if_flagged(bull, job_id)
                except OUTAGES:
                    raise
                except Exception as exc:  # one job's trouble must not stop the others
                    self._stalled_log.once(bull.config.key, job_id, exc)
        return moved

    async def update_progress(self, queue: str, job: ClaimedJob, progress: Any) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            code = await bull.update_progress(job.id, progress)
        if code == JOB_NOT_EXIST:
            raise JobNotFoundError(queue, job.id)

    async def add_log(self, queue: str, job: ClaimedJob, line: str) -> None:
        bull = self._bull(queue)
        with unavailable_guard():
            opts = await self._opts(bull, job, forget=False)
            await bull.add_log(job.id, line, int(opts.get("keepLogs") or 0))

    async def wait_for_work(self, queue: str, timeout_ms: int) -> None:
        """Block on the queue's BullMQ marker (BZPOPMIN) on the blocking client.

        The marker holds ``0`` when a job is ready and a delayed job's due time
        otherwise; popping a future due time keeps waiting until then, unless a job is
        added first. Popping consumes the marker, so the caller must fetch next; a
        cancelled or closed wait returns promptly (redis-py drops the connection).
        """
        bull = self._bull(queue)
        await wait_on_marker(lambda s: self._waits.pop(bull, s), timeout_ms, self._is_closed)

    async def wait_for_job(
        self, queue: str, timeout_ms: int, token: str, waker: str
    ) -> ClaimedJob | None:
        """Wait as :meth:`wait_for_work` and claim for ``token`` in the same round trip
        (``redis.wait``); ``None`` when nothing was claimed (the caller fetches)."""
        bull = self._bull(queue)
        woken = await wait_on_marker(
            lambda s: self._waits.pop_and_claim(bull, s, token, waker),
            timeout_ms,
            self._is_closed,
        )
        if woken is None or woken.claimed is None or woken.claimed.job_id is None:
            return None
        return (await self._claimed(bull, woken.claimed, token)).job

    async def end_wait(self, queue: str, waker: str) -> bool:
        """Wake ``waker``'s :meth:`wait_for_job` (its claim still runs): a cancelled
        wait could lose a claim that had already run in Redis."""
        await self._waits.wake(self._shared(), self._bull(queue), waker)
        return True

    def _is_closed(self) -> bool:
        return self._closed


def _no_job(nxt: NextJob) -> Fetch:
    if nxt.limit_until_ms > 0:
        return Fetch(None, nxt.limit_until_ms, rate_limited=True)
    if nxt.delay_until_ms > 0:
        return Fetch(None, max(nxt.delay_until_ms - now_ms(), 1))
    return Fetch(None, 0)


def _finish_error(queue: str, job_id: str, code: int) -> JobSystemError:
    if code in LOCK_LOST_CODES:
        return LockLostError(queue, job_id)
    return JobSystemError(
        f"BullMQ refused to finish job {job_id!r} of queue {queue!r} (code {code})"
    )
