"""An idle Redis worker claims in the same round trip as its wait (``redis.wait``).

Against the real Redis: a job added during a wait comes back from the wait itself,
claimed and dated when the claim ran (not when it was sent); a delayed job is claimed
when it comes due; flushed scripts cost one wait, not the job; a stop wakes the wait
instead of cancelling it, and a job the woken claim took is run, not left locked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_async

from ils.jobs.catalogue import Catalogue
from ils.jobs.job_types import default_job_types
from ils.jobs.model import JobOptions, JobState, NewJob
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.stores.redis.store import RedisJobStore
from ils.jobs.stores.redis.wait import wake_key
from tests.conftest import delete_prefix

pytestmark = pytest.mark.redis
Q = "email"
DATA = {"type": "order-confirmation", "orderId": "o-1", "userId": "u-1"}


async def _state(store: RedisJobStore, job_id: str) -> JobState:
    record = await store.get_job(Q, job_id)
    assert record is not None
    return record.state


@pytest.fixture
async def stores(
    redis_url: str, redis_prefix: str, test_catalogue: Catalogue
) -> AsyncIterator[tuple[RedisJobStore, RedisJobStore]]:
    """A worker's store and a producer's store on this test's prefix."""
    worker = RedisJobStore(redis_url, test_catalogue, prefix=redis_prefix)
    producer = RedisJobStore(redis_url, test_catalogue, prefix=redis_prefix)
    yield worker, producer
    await worker.close()
    await producer.close()
    await delete_prefix(redis_url, redis_prefix)


async def test_a_job_added_during_the_wait_is_claimed_by_it(
    stores: tuple[RedisJobStore, RedisJobStore],
) -> None:
    worker, producer = stores
    waiter = asyncio.create_task(worker.wait_for_job(Q, 5_000, "tok-1", "w"))
    await asyncio.sleep(0.3)  # the wait (and its claim) were sent this long before the add
    added_ms = int(time.time() * 1000)
    job_id = await producer.add(Q, NewJob("order-confirmation", DATA))
    claimed = await asyncio.wait_for(waiter, 2.0)
    assert claimed is not None and claimed.id == job_id and claimed.token == "tok-1"
    # Dated by Redis when the claim ran: bullmq's script as sent would say 300 ms earlier.
    assert claimed.record.processed_at_ms is not None
    assert claimed.record.processed_at_ms >= added_ms - 5
    assert (await _state(worker, job_id)) is JobState.ACTIVE
    await worker.complete(Q, claimed, None)


async def test_a_delayed_job_is_claimed_when_it_comes_due(
    stores: tuple[RedisJobStore, RedisJobStore],
) -> None:
    worker, producer = stores
    job_id = await producer.add(Q, NewJob("order-confirmation", DATA, JobOptions(delay_ms=300)))
    started = time.monotonic()
    claimed = None
    while claimed is None and time.monotonic() - started < 3:
        claimed = await worker.wait_for_job(Q, 5_000, "tok", "w")
    assert claimed is not None and claimed.id == job_id
    assert 0.25 <= time.monotonic() - started < 1.5


async def test_flushed_scripts_cost_one_wait_not_the_job(
    stores: tuple[RedisJobStore, RedisJobStore], redis_url: str
) -> None:
    worker, producer = stores
    await producer.add(Q, NewJob("order-confirmation", DATA))
    assert await worker.wait_for_job(Q, 1_000, "t1", "w") is not None  # loads the script
    job_id = await producer.add(Q, NewJob("order-confirmation", DATA))
    client = redis_async.Redis.from_url(redis_url)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    # NOSCRIPT: the claim did not run, nothing is lost; the wait says "fetch".
    assert await worker.wait_for_job(Q, 1_000, "t2", "w") is None
    assert await _state(worker, job_id) is JobState.WAITING
    fetched = await worker.fetch(Q, "t3")
    assert fetched.job is not None and fetched.job.id == job_id
    # The next wait loads the script again and claims (the worker's own pipe, made
    # after the flush, adds: the producer's would answer NOSCRIPT once).
    job_id = await worker.add(Q, NewJob("order-confirmation", DATA))
    claimed = await worker.wait_for_job(Q, 1_000, "t4", "w")
    assert claimed is not None and claimed.id == job_id


async def test_end_wait_wakes_the_wait_and_its_claim_still_runs(
    stores: tuple[RedisJobStore, RedisJobStore], redis_url: str
) -> None:
    worker, _ = stores
    waiter = asyncio.create_task(worker.wait_for_job(Q, 10_000, "tok", "w"))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert await worker.end_wait(Q, "w") is True
    assert await asyncio.wait_for(waiter, 2.0) is None
    assert time.monotonic() - started < 1.0
    # The wake left nothing behind that would end the next wait early.
    bull = worker._bull(Q)
    client = redis_async.Redis.from_url(redis_url)
    try:
        assert await client.exists(wake_key(bull, "w")) == 0
    finally:
        await client.aclose()


class _StopMidClaim:
    """The worker's store, with ``end_wait`` first adding a job: the claim that runs
    behind the woken wait takes it, as when a job arrives just as a worker stops."""

    def __init__(self, producer: RedisJobStore) -> None:
        self.producer = producer
        self.job_id: str | None = None

    def install(self, worker: RedisJobStore) -> None:
        end_wait = worker.end_wait

        async def adding_end_wait(queue: str, waker: str) -> bool:
            self.job_id = await self.producer.add(Q, NewJob("order-confirmation", DATA))
            return await end_wait(queue, waker)

        worker.end_wait = adding_end_wait  # type: ignore[method-assign]


async def test_a_job_claimed_as_the_worker_stops_is_run_not_left_locked(
    stores: tuple[RedisJobStore, RedisJobStore], test_catalogue: Catalogue
) -> None:
    worker, producer = stores
    ran: list[str] = []
    registry = HandlerRegistry(default_job_types())

    async def handle(payload: OrderConfirmationEmail, ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    registry.register(OrderConfirmationEmail, handle)
    stop_mid_claim = _StopMidClaim(producer)
    stop_mid_claim.install(worker)
    runner = Runner([worker], [test_catalogue[Q]], registry)
    runner.start()
    consumer = runner.consumers[0]
    deadline = time.monotonic() + 3
    while not consumer._in_wait_for_job and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert consumer._in_wait_for_job
    started = time.monotonic()
    await runner.stop(grace_s=5.0)
    assert time.monotonic() - started < 2.0  # woken, not left to its 5 s block
    assert stop_mid_claim.job_id is not None
    assert ran == [stop_mid_claim.job_id]
    assert (await _state(producer, stop_mid_claim.job_id)) is JobState.COMPLETED


async def test_a_store_that_cannot_wake_is_cancelled_as_before(
    stores: tuple[RedisJobStore, RedisJobStore], test_catalogue: Catalogue
) -> None:
    worker, _ = stores

    async def cannot(queue: str, waker: str) -> bool:
        return False

    worker.end_wait = cannot  # type: ignore[method-assign]
    runner = Runner([worker], [test_catalogue[Q]], HandlerRegistry(default_job_types()))
    runner.start()
    consumer = runner.consumers[0]
    deadline = time.monotonic() + 3
    while not consumer._in_wait_for_job and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await runner.stop(grace_s=5.0)
    assert time.monotonic() - started < 2.0


async def test_a_claim_that_found_nothing_keeps_waiting(
    stores: tuple[RedisJobStore, RedisJobStore], redis_url: str
) -> None:
    # A marker left behind with no job (a finish adds one when jobs may remain): the
    # wait pops it at once and its claim finds nothing. The wait goes on, rather than
    # sending the caller to fetch (and wait) again for nothing.
    worker, producer = stores
    client = redis_async.Redis.from_url(redis_url)
    try:
        await client.zadd(worker._bull(Q).keys["marker"], {"0": 0})
    finally:
        await client.aclose()
    waiter = asyncio.create_task(worker.wait_for_job(Q, 3_000, "tok", "w"))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    job_id = await producer.add(Q, NewJob("order-confirmation", DATA))
    claimed = await asyncio.wait_for(waiter, 2.0)
    assert claimed is not None and claimed.id == job_id
