"""Redis-only behaviour of ``RedisJobStore``: the jobs are real BullMQ jobs.

The shared behaviour is in ``test_store_contract.py``; here we check what only Redis
has: BullMQ's own view of our jobs, jobs written by plain BullMQ producers (Python and
Node), BullMQ's lock codes, stalled-check passes, the blocking marker wait, health
facts and outages.
"""

from __future__ import annotations

import asyncio
import json
import time
import types
import uuid
from collections.abc import AsyncIterator
from typing import Any

import bullmq
import pytest
import redis.asyncio as redis_asyncio
from redis import exceptions as redis_errors

from ils.errors import InvalidPayloadError, LockLostError, StoreUnavailableError
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.model import ClaimedJob, JobOptions, JobState, NewJob, is_node_integer
from ils.jobs.stores.redis.bull import unavailable_guard
from ils.jobs.stores.redis.store import RedisJobStore
from ils.settings import Settings
from tests.conftest import delete_prefix
from tests.faults.wait import eventually

pytestmark = pytest.mark.redis
Q = "email"
DATA = {"type": "order-confirmation", "orderId": "o-1", "userId": "u-1"}


def catalogue_with(**email: Any) -> Catalogue:
    base = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "stalled_interval_ms": 300}
    return build_catalogue(Settings(queues={"email": {**base, **email}}))


@pytest.fixture
async def make(redis_url: str, redis_prefix: str) -> AsyncIterator[Any]:
    """Builds stores (and plain BullMQ queues) on this test's prefix; cleans up."""
    opened: list[Any] = []

    def store(catalogue: Catalogue, **kwargs: Any) -> RedisJobStore:
        made = RedisJobStore(redis_url, catalogue, prefix=redis_prefix, **kwargs)
        opened.append(made)
        return made

    yield store
    for item in opened:
        await item.close()
    await delete_prefix(redis_url, redis_prefix)


@pytest.fixture
async def rstore(make: Any, test_catalogue: Catalogue) -> RedisJobStore:
    store: RedisJobStore = make(test_catalogue)
    return store


@pytest.fixture
async def bull_queue(redis_url: str, redis_prefix: str) -> AsyncIterator[Any]:
    """A plain ``bullmq.Queue`` on the e-mail queue, as any other producer would open it."""
    queue = bullmq.Queue("emails", {"connection": redis_url, "prefix": redis_prefix})
    yield queue
    await queue.close()


async def claim(store: RedisJobStore, deadline_s: float = 5.0) -> ClaimedJob:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        fetched = await store.fetch(Q, uuid.uuid4().hex)
        if fetched.job is not None:
            return fetched.job
        await asyncio.sleep(min(max(fetched.wait_ms, 5), 100) / 1000)
    raise AssertionError("no job claimed in time")


# -- compatibility with BullMQ ------------------------------------------------------------


async def test_added_job_is_a_bullmq_job(rstore: RedisJobStore, bull_queue: Any) -> None:
    job_id = await rstore.add(Q, NewJob("order-confirmation", DATA, JobOptions(priority=2)))
    job = await bull_queue.getJob(job_id)
    assert job is not None
    assert (job.name, job.data, job.priority) == ("order-confirmation", DATA, 2)
    assert job.opts["attempts"] == 3
    assert job.opts["backoff"] == {"type": "exponential", "delay": 50}
    assert job.opts["removeOnComplete"] == {"age": 24 * 3600, "count": 1000}
    assert job.opts["removeOnFail"] == {"age": 7 * 24 * 3600, "count": 5000}
    assert await bull_queue.getJobState(job_id) == "prioritized"
    # Exactly the JSON Node's JSON.stringify writes, camelCase keys untouched.
    raw = await bull_queue.client.hget(f"{bull_queue.qualifiedName}:{job_id}", "data")
    assert raw == json.dumps(DATA, separators=(",", ":"))


async def test_plain_bullmq_job_is_processed_with_queue_retention(
    make: Any, bull_queue: Any
) -> None:
    store = make(catalogue_with(keep_completed_count=1))
    first = await bull_queue.add("order-confirmation", DATA)  # no attempts, no retention
    second = await bull_queue.add("order-confirmation", {**DATA, "orderId": "o-2"})
    for expected in (first.id, second.id):
        claimed = await claim(store)
        assert claimed.id == expected
        assert claimed.record.attempts == 1  # BullMQ's default
        await store.complete(Q, claimed, {"sent": True})
    assert await bull_queue.getJob(first.id) is None  # queue retention: keep 1
    done = await bull_queue.getJob(second.id)
    assert done.returnvalue == {"sent": True}
    assert await bull_queue.getJobState(second.id) == "completed"


async def test_job_own_fixed_backoff_is_honoured(rstore: RedisJobStore, bull_queue: Any) -> None:
    added = await bull_queue.add(
        "order-confirmation", DATA, {"attempts": 3, "backoff": {"type": "fixed", "delay": 5_000}}
    )
    claimed = await claim(rstore)
    assert await rstore.fail(Q, claimed, "smtp down", "trace-1") is JobState.DELAYED
    again = await rstore.fetch(Q, "t")
    assert again.job is None
    assert 4_000 < again.wait_ms <= 5_000
    await rstore.promote(Q, added.id)
    claimed = await claim(rstore)
    assert await rstore.fail(Q, claimed, "smtp down", "trace-2") is JobState.DELAYED
    # fixed: 5 s again, not 10 s
    assert 4_000 < (await rstore.fetch(Q, "t")).wait_ms <= 5_000
    job = await bull_queue.getJob(added.id)
    assert job.stacktrace == ["trace-1", "trace-2"]
    assert job.attemptsMade == 2


async def test_job_without_backoff_is_retried_at_once(
    rstore: RedisJobStore, bull_queue: Any
) -> None:
    await bull_queue.add("order-confirmation", DATA, {"attempts": 2})
    claimed = await claim(rstore)
    assert await rstore.fail(Q, claimed, "x", None) is JobState.WAITING
    again = await rstore.fetch(Q, "t2")
    assert again.job is not None
    assert again.job.record.attempts_made == 1
    assert await rstore.fail(Q, again.job, "x", None) is JobState.FAILED


async def test_short_option_keys_from_node_are_read(rstore: RedisJobStore, bull_queue: Any) -> None:
    job = await bull_queue.add("order-confirmation", DATA, {"keepLogs": 2})
    key = f"{bull_queue.qualifiedName}:{job.id}"
    stored = json.loads(await bull_queue.client.hget(key, "opts"))
    assert stored["kl"] == 2  # BullMQ stores keepLogs as "kl"
    claimed = await claim(rstore)
    for line in ("one", "two", "three"):
        await rstore.add_log(Q, claimed, line)
    record = await rstore.get_job(Q, job.id)
    assert record is not None
    assert record.logs == ["two", "three"]


async def test_retried_backoff_comes_due_without_a_second_of_lateness(make: Any) -> None:
    # The Python Worker's own loop rounds its block to whole seconds (~1 s late);
    # fetch's wait_ms plus wait_for_work's fractional block must not.
    store = make(catalogue_with(backoff_delay_ms=100, attempts=2))
    await store.add(Q, NewJob("order-confirmation", DATA))
    claimed = await claim(store)
    failed_at = time.monotonic()
    await store.fail(Q, claimed, "x", None)
    while True:
        fetched = await store.fetch(Q, "t")
        if fetched.job is not None:
            break
        await store.wait_for_work(Q, max(fetched.wait_ms, 1))
    assert 0.09 <= time.monotonic() - failed_at < 0.5


# -- locks, stalls, deferred failures ----------------------------------------------------


async def test_lost_lock_is_lock_lost_error(rstore: RedisJobStore, bull_queue: Any) -> None:
    await rstore.add(Q, NewJob("order-confirmation", DATA))
    claimed = await claim(rstore)
    await bull_queue.client.delete(f"{bull_queue.qualifiedName}:{claimed.id}:lock")
    with pytest.raises(LockLostError):
        await rstore.complete(Q, claimed, None)
    assert await rstore.extend_locks(Q, [claimed]) == [claimed.id]


async def test_stalled_check_needs_two_passes(make: Any, bull_queue: Any) -> None:
    # A long stalled interval, ended by hand (its throttle key deleted), so no step
    # depends on how fast this machine is at the moment.
    store = make(catalogue_with(lock_duration_ms=200, stalled_interval_ms=60_000))
    job_id = await store.add(Q, NewJob("order-confirmation", DATA))
    await claim(store)
    lock = f"{bull_queue.qualifiedName}:{job_id}:lock"

    async def lock_expired() -> bool:
        return not await bull_queue.client.exists(lock)

    await eventually(lock_expired, 5)
    assert await store.recover_stalled(Q) == []  # first pass only marks suspects
    assert await store.recover_stalled(Q) == []  # throttled by the stalled interval
    await bull_queue.client.delete(f"{bull_queue.qualifiedName}:stalled-check")
    assert await store.recover_stalled(Q) == [job_id]
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.WAITING


async def test_job_flagged_by_a_stalled_check_fails_at_fetch(
    rstore: RedisJobStore, bull_queue: Any
) -> None:
    # What another worker's (e.g. Node's) stalled check leaves behind: a waiting job
    # flagged "defa"; BullMQ workers fail it when they fetch it.
    flagged = await rstore.add(Q, NewJob("order-confirmation", DATA))
    normal = await rstore.add(Q, NewJob("order-confirmation", {**DATA, "orderId": "o-2"}))
    key = f"{bull_queue.qualifiedName}:{flagged}"
    await bull_queue.client.hset(key, "defa", "job stalled more than allowable limit")
    fetched = await rstore.fetch(Q, "t")
    assert fetched.job is not None
    assert fetched.job.id == normal
    record = await rstore.get_job(Q, flagged)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.failed_reason == "job stalled more than allowable limit"


# -- waiting, pausing, listing ----------------------------------------------------------


async def test_wait_for_work_blocks_its_own_connection_and_cancels_fast(
    rstore: RedisJobStore,
) -> None:
    waiter = asyncio.create_task(rstore.wait_for_work(Q, 10_000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert (await rstore.counts(Q))[JobState.WAITING] == 0  # shared client not blocked
    assert time.monotonic() - started < 0.5
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert time.monotonic() - started < 0.5
    # The store still works after a cancelled wait.
    await rstore.add(Q, NewJob("order-confirmation", DATA))
    await asyncio.wait_for(rstore.wait_for_work(Q, 5_000), 1.0)


async def test_close_releases_a_pending_wait(make: Any, test_catalogue: Catalogue) -> None:
    store = make(test_catalogue)
    waiter = asyncio.create_task(store.wait_for_work(Q, 10_000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await store.close()
    await asyncio.wait_for(waiter, 1.0)
    assert time.monotonic() - started < 1.0


async def test_wait_for_work_waits_for_a_delayed_marker(rstore: RedisJobStore) -> None:
    await rstore.add(Q, NewJob("order-confirmation", DATA, JobOptions(delay_ms=300)))
    started = time.monotonic()
    await rstore.wait_for_work(Q, 5_000)
    assert 0.2 <= time.monotonic() - started < 1.0
    assert (await rstore.fetch(Q, "t")).job is not None


async def test_paused_queue_shows_paused_jobs(rstore: RedisJobStore) -> None:
    job_id = await rstore.add(Q, NewJob("order-confirmation", DATA, JobOptions(priority=4)))
    await rstore.pause(Q)
    record = await rstore.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.PAUSED
    assert [r.id for r in await rstore.list_jobs(Q, JobState.PAUSED)] == [job_id]
    assert await rstore.list_jobs(Q, JobState.WAITING) == []
    await rstore.resume(Q)
    assert [r.id for r in await rstore.list_jobs(Q, JobState.WAITING)] == [job_id]


async def test_waiting_spans_wait_list_and_prioritized_set(rstore: RedisJobStore) -> None:
    plain = await rstore.add(Q, NewJob("order-confirmation", DATA))
    await asyncio.sleep(0.005)
    urgent = await rstore.add(Q, NewJob("order-confirmation", DATA, JobOptions(priority=1)))
    listed = await rstore.list_jobs(Q, JobState.WAITING)
    assert [r.id for r in listed] == [urgent, plain]
    assert await rstore.oldest_waiting_ms(Q) == listed[1].created_at_ms
    assert await rstore.clean(Q, JobState.WAITING, limit=1) == 1
    assert (await rstore.counts(Q))[JobState.WAITING] == 1


async def test_a_job_is_dated_on_the_local_stores_millisecond(
    rstore: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bullmq dates a job round(time.time() * 1000); the local store floors. Redis jobs
    carry our (floored) time, so "newest first" over both stores never inverts two
    jobs added in turn within a millisecond."""
    at_s = 1_700_000_000.0006  # 0.6 ms into a millisecond: rounding would add one
    floor_ms = 1_700_000_000_000
    monkeypatch.setattr(bullmq.job, "time", types.SimpleNamespace(time=lambda: at_s))
    monkeypatch.setattr("ils.jobs.stores.redis.store.now_ms", lambda: floor_ms)
    job_id = await rstore.add(Q, NewJob("order-confirmation", DATA))
    record = await rstore.get_job(Q, job_id)
    assert record is not None
    assert record.created_at_ms == floor_ms


# -- validation, health, outages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "refused"),
    [
        ("42", True),
        ("-7", True),
        ("0", True),
        ("007", False),
        ("order-42", False),
        ("12345678901234567890123456789012", False),
        ("-0", False),
        ("4-2", False),
    ],
)
def test_integer_ids_are_refused_as_node_refuses_them(job_id: str, refused: bool) -> None:
    assert is_node_integer(job_id) is refused


@pytest.mark.parametrize(
    "options",
    [JobOptions(priority=2_097_153), JobOptions(priority=-1), JobOptions(job_id="42")],
)
async def test_options_node_would_refuse_are_refused(
    rstore: RedisJobStore, options: JobOptions
) -> None:
    with pytest.raises(InvalidPayloadError):
        await rstore.add(Q, NewJob("order-confirmation", DATA, options))
    assert sum((await rstore.counts(Q)).values()) == 0


async def test_health_reports_redis_facts(rstore: RedisJobStore) -> None:
    health = await rstore.health()
    assert health.reachable
    assert health.error is None
    assert health.latency_ms is not None
    assert health.details["maxmemory_policy"] == "noeviction"
    assert health.details["redis_version"]
    assert health.details["used_memory_human"]
    assert "maxmemory" in health.details


async def test_unreachable_redis_raises_store_unavailable(test_catalogue: Catalogue) -> None:
    store = RedisJobStore("redis://127.0.0.1:1/0", test_catalogue, prefix="ilstest-down")
    secret = {"type": "order-confirmation", "orderId": "PATIENT-SECRET", "userId": "u"}
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await store.add(Q, NewJob("order-confirmation", secret))
        assert "PATIENT-SECRET" not in str(caught.value)
        assert caught.value.__cause__ is not None
        with pytest.raises(StoreUnavailableError):
            await store.fetch(Q, "t")
        with pytest.raises(StoreUnavailableError):
            await store.counts(Q)
        assert time.monotonic() - started < 2.0
        health = await store.health()
        assert not health.reachable
        assert health.error and "redis unreachable" in health.error
    finally:
        await store.close()
    assert not (await store.health()).reachable  # closed: a report, not an exception


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'"),
        redis_errors.ReadOnlyError("You can't write against a read only replica."),
        redis_errors.BusyLoadingError("Redis is loading the dataset in memory"),
        redis_errors.TimeoutError("Timeout reading from socket"),
    ],
)
def test_write_outages_map_to_store_unavailable(error: Exception) -> None:
    # noeviction with full memory, a failover replica, a restart: callers fall back.
    with pytest.raises(StoreUnavailableError) as caught, unavailable_guard():
        raise error
    assert caught.value.__cause__ is error


def test_script_errors_are_not_outages() -> None:
    with pytest.raises(redis_errors.ResponseError), unavailable_guard():
        raise redis_errors.ResponseError("ERR Error running script")


# -- Node BullMQ 6.x, both ways -----------------------------------------------------------


async def test_a_completion_after_a_script_flush_is_recorded(
    rstore: RedisJobStore, redis_url: str
) -> None:
    """Completions go on the store's pipe by SHA. Scripts flushed under its live
    connection make Redis refuse the completion (NOSCRIPT: it did not run); it is sent
    again on a new connection, which loads the scripts, instead of being lost (the job
    would then have run again once its lock expired)."""
    job_id = await rstore.add(Q, NewJob("order-confirmation", DATA))
    fetched = await rstore.fetch(Q, "t1")
    assert fetched.job is not None and fetched.job.id == job_id
    raw = redis_asyncio.Redis.from_url(redis_url)
    try:
        await raw.script_flush()
    finally:
        await raw.aclose()
    await rstore.complete(Q, fetched.job, {"sent": True})
    record = await rstore.get_job(Q, job_id)
    assert record is not None and record.state is JobState.COMPLETED
