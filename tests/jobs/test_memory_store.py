"""What the contract suite does not pin down for the in-memory store: the exact timings
of leases, windows and delays on a hand-moved clock (as ``test_local_store`` checks
them for the local store, whose behaviour this store copies), what a shared
``MemoryState`` shares and what separate ones keep apart, and that nothing a caller
holds aliases what the store keeps.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from ils.clock import ManualClock
from ils.errors import InvalidPayloadError, LockLostError
from ils.jobs.model import JobState, NewJob
from ils.jobs.stores.local.sql import STALLED_REASON
from ils.jobs.stores.memory.state import MemoryState
from ils.jobs.stores.memory.store import MemoryJobStore
from tests.faults.wait import still
from tests.support.stores import Q, job
from tests.support.stores import email_catalogue as catalogue


async def test_lock_lease_on_the_clock_then_recovered_then_failed() -> None:
    clock = ManualClock()
    store = MemoryJobStore(catalogue(), clock=clock, max_stalled_count=1)
    job_id = await store.add(Q, job(1))
    first = (await store.fetch(Q, "a")).job
    assert first is not None
    clock.advance(1000)  # the lease lasts through its last millisecond
    assert await store.recover_stalled(Q) == []
    assert await store.extend_locks(Q, [first]) == []  # now until t+2000
    clock.advance(1001)
    assert await store.extend_locks(Q, [first]) == [job_id]
    with pytest.raises(LockLostError):
        await store.complete(Q, first, None)
    assert await store.recover_stalled(Q) == [job_id]
    second = (await store.fetch(Q, "b")).job
    assert second is not None
    assert second.id == job_id
    with pytest.raises(LockLostError):
        await store.fail(Q, first, "late", None)  # the first worker's token is gone
    clock.advance(1001)
    assert await store.recover_stalled(Q) == [job_id]
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert (record.state, record.failed_reason) == (JobState.FAILED, STALLED_REASON)
    assert (record.attempts_made, record.finished_at_ms) == (1, clock.now_ms())


async def test_rate_limit_window_is_exact_and_shared_by_the_state() -> None:
    clock, state = ManualClock(), MemoryState()
    cat = catalogue(rate_limit_max=2, rate_limit_duration_ms=1000)
    one, two = (MemoryJobStore(cat, clock=clock, state=state) for _ in range(2))
    await one.add_bulk(Q, [job(i) for i in range(6)])
    assert (await one.fetch(Q, "a")).job is not None
    clock.advance(300)
    second = (await two.fetch(Q, "b")).job
    assert second is not None
    limited = await two.complete(Q, second, None, fetch_next=True)
    assert limited is not None
    assert (limited.job, limited.rate_limited, limited.wait_ms) == (None, True, 700)
    assert (await one.fetch(Q, "c")).rate_limited  # one window for both stores
    clock.advance(700)
    assert (await one.fetch(Q, "d")).job is not None  # a new window opens now
    clock.advance(999)
    assert (await two.fetch(Q, "e")).job is not None
    assert (await one.fetch(Q, "f")).wait_ms == 1
    clock.advance(1)
    assert (await one.fetch(Q, "g")).job is not None


async def test_due_jobs_queue_behind_waiting_ones_and_retries_behind_both() -> None:
    clock = ManualClock()
    store = MemoryJobStore(catalogue(), clock=clock)
    failing = await store.add(Q, job(0, attempts=1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    assert await store.fail(Q, claimed, "refused", "trace") is JobState.FAILED
    await store.add(Q, job(1))
    await store.add(Q, job(2, delay_ms=100))
    await store.add(Q, job(3, delay_ms=5_000))
    clock.advance(200)
    await store.add(Q, job(4))
    clock.advance(1)
    await store.retry_job(Q, failing)
    retried = await store.get_job(Q, failing)
    assert retried is not None
    assert (retried.state, retried.attempts_made, retried.stacktrace) == (
        JobState.WAITING,
        0,
        ["trace"],
    )
    order = []
    while (fetched := await store.fetch(Q, "t")).job is not None:
        order.append(fetched.job.record.data["orderId"])
    assert order == ["o1", "o2", "o4", "o0"]
    assert (fetched.wait_ms, fetched.rate_limited) == (4_799, False)


async def test_zero_back_off_retries_at_once_and_shows_paused() -> None:
    store = MemoryJobStore(catalogue(backoff_delay_ms=0))
    await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    assert await store.fail(Q, claimed, "x", None) is JobState.WAITING
    claimed = (await store.fetch(Q, "b")).job
    assert claimed is not None
    await store.pause(Q)
    assert await store.fail(Q, claimed, "x", None) is JobState.PAUSED
    assert (await store.fetch(Q, "c")).job is None


async def test_separate_states_are_separate_deployments() -> None:
    cat = catalogue()
    shared = MemoryState()
    alone, together, also = (
        MemoryJobStore(cat),
        MemoryJobStore(cat, state=shared),
        MemoryJobStore(cat, state=shared),
    )
    job_id = await together.add(Q, job(1, job_id="same"))
    assert await also.get_job(Q, job_id) is not None
    assert await alone.get_job(Q, job_id) is None
    await also.pause(Q)
    assert await together.is_paused(Q)
    assert not await alone.is_paused(Q)
    await alone.add(Q, job(2, job_id="same"))  # its own ids: adds a job of its own
    record = await also.get_job(Q, "same")
    assert record is not None
    assert record.data["orderId"] == "o1"


async def test_what_callers_hold_never_aliases_the_store() -> None:
    store = MemoryJobStore(catalogue())
    payload: dict[str, Any] = {"orderId": "o1", "lines": [1, 2], "pair": (1, 2)}
    job_id = await store.add(Q, NewJob("order-confirmation", payload))
    payload["lines"].append(3)
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.data == {"orderId": "o1", "lines": [1, 2], "pair": [1, 2]}  # as JSON
    record.data["orderId"] = "changed"
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    assert claimed.record.data["orderId"] == "o1"
    result: dict[str, Any] = {"sent": True}
    await store.complete(Q, claimed, result)
    result["sent"] = False
    done = await store.get_job(Q, job_id)
    assert done is not None
    assert done.result == {"sent": True}


async def test_bad_input_changes_nothing() -> None:
    store = MemoryJobStore(catalogue())
    with pytest.raises(InvalidPayloadError):
        await store.add_bulk(Q, [job(1), NewJob("x", {"ratio": math.nan})])
    assert sum((await store.counts(Q)).values()) == 0
    job_id = await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    with pytest.raises(InvalidPayloadError):
        await store.complete(Q, claimed, {"n": math.inf})
    with pytest.raises(InvalidPayloadError):
        await store.update_progress(Q, claimed, {1, 2})
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert (record.state, record.progress) == (JobState.ACTIVE, None)


async def test_wait_for_work_follows_a_hand_moved_clock_pause_and_close() -> None:
    clock = ManualClock()
    store = MemoryJobStore(catalogue(), clock=clock, poll_interval_ms=5)
    await store.add(Q, job(1, delay_ms=60_000))
    waiter = asyncio.create_task(store.wait_for_work(Q, 10_000))
    await still(waiter.done, for_s=0.05)  # several looks at the clock: not due yet
    clock.advance(60_000)
    await asyncio.wait_for(waiter, 2.0)
    await store.pause(Q)
    paused = asyncio.create_task(store.wait_for_work(Q, 10_000))
    await still(paused.done, for_s=0.05)  # a job is due, but a paused queue hands out none
    await store.resume(Q)
    await asyncio.wait_for(paused, 2.0)
    assert (await store.fetch(Q, "a")).job is not None
    idle = asyncio.create_task(store.wait_for_work(Q, 10_000))
    await still(idle.done, for_s=0.05)
    await store.close()
    await asyncio.wait_for(idle, 2.0)
