"""One contract for every job store: each test runs on Redis, local SQLite, local
PostgreSQL and the in-memory store (the ``make_store``/``store`` fixtures are
parametrised over the four).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import pytest

from ils.errors import (
    InvalidJobStateError,
    JobNotFoundError,
    LockLostError,
    UnknownQueueError,
)
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.model import COUNTED_STATES, ClaimedJob, JobOptions, JobState, NewJob
from ils.jobs.stores.base import JobStore
from ils.settings import Settings
from tests.conftest import StoreFactory

Q = "email"


def job(n: int = 0, **options: Any) -> NewJob:
    return NewJob(
        "order-confirmation",
        {"type": "order-confirmation", "orderId": f"o{n}", "userId": "u1"},
        JobOptions(**options),
    )


def catalogue_with(**email: Any) -> Catalogue:
    base = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "stalled_interval_ms": 500}
    return build_catalogue(Settings(queues={"email": {**base, **email}}))


async def claim(store: JobStore, queue: str = Q, deadline_s: float = 5.0) -> ClaimedJob:
    """Fetch until a job comes (delayed jobs and back-off take a moment)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        fetched = await store.fetch(queue, uuid.uuid4().hex)
        if fetched.job is not None:
            return fetched.job
        await asyncio.sleep(min(max(fetched.wait_ms, 10), 200) / 1000)
    raise AssertionError("no job could be claimed in time")


async def test_add_and_get_round_trip(store: JobStore) -> None:
    job_id = await store.add(Q, job(1))
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.id == job_id
    assert record.queue == Q
    assert record.name == "order-confirmation"
    assert record.data == {"type": "order-confirmation", "orderId": "o1", "userId": "u1"}
    assert record.state is JobState.WAITING
    assert record.attempts == 3  # the e-mail queue's default
    assert record.attempts_made == 0
    assert record.store == store.kind
    assert abs(record.created_at_ms - time.time() * 1000) < 5_000
    assert record.finished_at_ms in (None, 0)


async def test_the_company_a_job_was_made_for_comes_back(store: JobStore) -> None:
    stamped = await store.add(Q, job(1, company_id="c" * 32))
    unstamped = await store.add(Q, job(2))
    one = await store.get_job(Q, stamped)
    other = await store.get_job(Q, unstamped)
    assert one is not None and other is not None
    assert (one.company_id, other.company_id) == ("c" * 32, None)
    # The payload stays exactly what was queued (the company is not in it).
    assert one.data == {"type": "order-confirmation", "orderId": "o1", "userId": "u1"}
    listed = {record.id: record.company_id for record in await store.list_jobs(Q, JobState.WAITING)}
    assert listed == {stamped: "c" * 32, unstamped: None}


async def test_a_companys_jobs_page_and_count(store: JobStore) -> None:
    ids = [await store.add(Q, job(n, company_id="a" if n % 2 else "b")) for n in range(5)]
    page, total, truncated = await store.list_company_jobs(Q, JobState.WAITING, "a", limit=1)
    assert (total, truncated) == (2, False)
    assert [record.id for record in page] == [ids[3]]  # newest first
    rest, _, _ = await store.list_company_jobs(Q, JobState.WAITING, "a", offset=1, limit=5)
    assert [record.id for record in rest] == [ids[1]]
    assert (await store.list_company_jobs(Q, JobState.FAILED, "a"))[1] == 0
    assert (await store.list_company_jobs(Q, JobState.WAITING, "zzz"))[:2] == ([], 0)


async def test_a_companys_finished_jobs_newest_finished_first(store: JobStore) -> None:
    for n in range(4):
        await store.add(Q, job(n, company_id="a" if n % 2 else "b"))
    finished = []
    for _ in range(4):
        claimed = await claim(store)
        await store.complete(Q, claimed, None, fetch_next=False)
        finished.append(claimed.id)
        await asyncio.sleep(0.005)  # distinct finish times
    page, total, truncated = await store.list_company_jobs(Q, JobState.COMPLETED, "a")
    ours = [job_id for job_id in finished if job_id in {record.id for record in page}]
    assert (total, truncated) == (2, False)
    assert [record.id for record in page] == list(reversed(ours))
    assert all(record.company_id == "a" for record in page)
    second, _, _ = await store.list_company_jobs(Q, JobState.COMPLETED, "a", offset=1, limit=1)
    assert [record.id for record in second] == [page[1].id]
    assert (await store.list_company_jobs(Q, JobState.FAILED, "a"))[1] == 0


async def test_search_by_name_id_and_payload_text(store: JobStore) -> None:
    ids = [await store.add(Q, job(n, company_id="a" if n % 2 else "b")) for n in range(4)]
    # orderId "o3" is in job 3's payload only; wildcards are taken literally.
    page, total, _ = await store.search_jobs(Q, JobState.WAITING, '"O3"')
    assert ([record.id for record in page], total) == ([ids[3]], 1)
    assert (await store.search_jobs(Q, JobState.WAITING, "ORDER-confirmation"))[1] == 4
    # By id (Redis ids are counters, so other jobs may match the digits too).
    assert ids[2] in [
        record.id for record in (await store.search_jobs(Q, JobState.WAITING, ids[2]))[0]
    ]
    assert (await store.search_jobs(Q, JobState.WAITING, "o%"))[1] == 0
    mine, count, _ = await store.search_jobs(Q, JobState.WAITING, "order", company_id="a")
    assert (sorted(record.id for record in mine), count) == (sorted([ids[1], ids[3]]), 2)
    assert (await store.search_jobs(Q, JobState.FAILED, "order"))[1] == 0


async def test_counts_cover_every_state(store: JobStore) -> None:
    counts = await store.counts(Q)
    assert set(counts) == set(COUNTED_STATES)
    assert all(v == 0 for v in counts.values())
    await store.add(Q, job(1))
    await store.add(Q, job(2, delay_ms=60_000))
    counts = await store.counts(Q)
    assert counts[JobState.WAITING] == 1
    assert counts[JobState.DELAYED] == 1


async def test_unknown_queue_is_refused(store: JobStore) -> None:
    with pytest.raises(UnknownQueueError):
        await store.add("nope", job())


async def test_add_bulk_keeps_order(store: JobStore) -> None:
    ids = await store.add_bulk(Q, [job(i) for i in range(5)])
    assert len(ids) == len(set(ids)) == 5
    for i, job_id in enumerate(ids):
        record = await store.get_job(Q, job_id)
        assert record is not None
        assert record.data["orderId"] == f"o{i}"
    assert (await store.counts(Q))[JobState.WAITING] == 5


async def test_explicit_job_id_adds_once(store: JobStore) -> None:
    first = await store.add(Q, job(1, job_id="outbox-42"))
    second = await store.add(Q, job(2, job_id="outbox-42"))
    assert first == second == "outbox-42"
    assert (await store.counts(Q))[JobState.WAITING] == 1
    record = await store.get_job(Q, "outbox-42")
    assert record is not None
    assert record.data["orderId"] == "o1"


async def test_fetch_order_priority_then_fifo(store: JobStore) -> None:
    await store.add(Q, job(1, priority=3))
    await store.add(Q, job(2, priority=1))
    await store.add(Q, job(3))
    await store.add(Q, job(4, priority=1))
    await store.add(Q, job(5, priority=2))
    order = []
    for _ in range(5):
        claimed = await claim(store)
        order.append(claimed.record.data["orderId"])
        await store.complete(Q, claimed, None)
    assert order == ["o3", "o2", "o4", "o5", "o1"]


async def test_fetch_complete_lifecycle(store: JobStore) -> None:
    job_id = await store.add(Q, job(1))
    fetched = await store.fetch(Q, "token-a")
    assert fetched.job is not None
    assert fetched.job.id == job_id
    assert fetched.job.token == "token-a"
    active = await store.get_job(Q, job_id)
    assert active is not None
    assert active.state is JobState.ACTIVE
    assert active.processed_at_ms
    assert (await store.counts(Q))[JobState.ACTIVE] == 1
    assert await store.complete(Q, fetched.job, {"sent": True}) is None
    done = await store.get_job(Q, job_id)
    assert done is not None
    assert done.state is JobState.COMPLETED
    assert done.result == {"sent": True}
    assert done.attempts_made == 1
    assert done.finished_at_ms
    empty = await store.fetch(Q, "token-b")
    assert empty.job is None
    assert not empty.rate_limited


async def test_complete_can_fetch_next(store: JobStore) -> None:
    await store.add_bulk(Q, [job(1), job(2)])
    first = await claim(store)
    following = await store.complete(Q, first, 1, fetch_next=True)
    assert following is not None
    assert following.job is not None
    assert following.job.record.data["orderId"] == "o2"
    record = await store.get_job(Q, following.job.id)
    assert record is not None
    assert record.state is JobState.ACTIVE
    last = await store.complete(Q, following.job, 2, fetch_next=True)
    assert last is None or last.job is None


async def test_wrong_token_loses_the_lock(store: JobStore) -> None:
    await store.add(Q, job(1))
    claimed = await claim(store)
    forged = ClaimedJob(claimed.record, "not-the-token")
    with pytest.raises(LockLostError):
        await store.complete(Q, forged, None)
    with pytest.raises(LockLostError):
        await store.fail(Q, forged, "boom", None)
    record = await store.get_job(Q, claimed.id)
    assert record is not None
    assert record.state is JobState.ACTIVE


async def test_always_failing_job_ends_failed_after_exact_attempts(
    make_store: StoreFactory,
) -> None:
    store = await make_store(catalogue_with(attempts=4, backoff_delay_ms=100))
    job_id = await store.add(Q, job(1))
    states = []
    claimed_at = []
    for attempt in range(4):
        claimed = await claim(store)
        claimed_at.append(time.monotonic())
        assert claimed.id == job_id
        states.append(
            await store.fail(Q, claimed, f"attempt {attempt + 1} failed", f"trace {attempt + 1}")
        )
    assert states == [JobState.DELAYED, JobState.DELAYED, JobState.DELAYED, JobState.FAILED]
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.attempts_made == 4
    assert record.failed_reason == "attempt 4 failed"
    assert len(record.stacktrace) == 4
    assert record.finished_at_ms
    # Back-off doubles: 100, 200, 400 ms between attempts (lateness allowed, not earliness).
    gaps = [b - a for a, b in itertools.pairwise(claimed_at)]
    for gap, expected in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= expected * 0.9
    assert gaps[2] > gaps[0]
    assert (await store.fetch(Q, "t")).job is None


async def test_fail_without_retry_is_final(store: JobStore) -> None:
    job_id = await store.add(Q, job(1))
    claimed = await claim(store)
    assert await store.fail(Q, claimed, "recipient refused", None, retry=False) is JobState.FAILED
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.attempts_made == 1
    assert record.failed_reason == "recipient refused"


async def test_finished_per_minute_counts_completed_and_failed(store: JobStore) -> None:
    now = int(time.time() * 1000)
    since = now - now % 60_000 - 60_000  # the previous minute and this one
    for n in range(3):
        await store.add(Q, job(n))
    first = await claim(store)
    await store.complete(Q, first, {"ok": True}, fetch_next=False)
    second = await claim(store)
    await store.complete(Q, second, None, fetch_next=False)
    third = await claim(store)
    await store.fail(Q, third, "no", None, retry=False)
    found = await store.finished_per_minute(Q, since, since + 180_000)
    totals = {state: sum(count for s, _, count in found if s is state) for state in JobState}
    assert (totals[JobState.COMPLETED], totals[JobState.FAILED]) == (2, 1)
    assert all(start in (since, since + 60_000, since + 120_000) for _, start, _ in found)
    assert await store.finished_per_minute(Q, since - 600_000, since) == []


async def test_fail_with_retry_delays_by_backoff(store: JobStore) -> None:
    job_id = await store.add(Q, job(1, backoff_delay_ms=60_000))
    claimed = await claim(store)
    assert await store.fail(Q, claimed, "smtp 421", "trace") is JobState.DELAYED
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.failed_reason == "smtp 421"
    fetched = await store.fetch(Q, "t")
    assert fetched.job is None
    assert 50_000 < fetched.wait_ms <= 60_000


async def test_retry_one_and_all_failed(store: JobStore) -> None:
    ids = await store.add_bulk(Q, [job(i, attempts=1) for i in range(3)])
    for _ in ids:
        await store.fail(Q, await claim(store), "no", None)
    assert (await store.counts(Q))[JobState.FAILED] == 3
    await store.retry_job(Q, ids[0])
    record = await store.get_job(Q, ids[0])
    assert record is not None
    assert record.state is JobState.WAITING
    assert record.attempts_made == 0
    with pytest.raises(InvalidJobStateError):
        await store.retry_job(Q, ids[0])
    with pytest.raises(JobNotFoundError):
        await store.retry_job(Q, "missing-job")
    assert await store.retry_failed(Q) == 2
    counts = await store.counts(Q)
    assert counts[JobState.FAILED] == 0
    assert counts[JobState.WAITING] == 3


async def test_remove(store: JobStore) -> None:
    waiting = await store.add(Q, job(1))
    await store.remove_job(Q, waiting)
    assert await store.get_job(Q, waiting) is None
    with pytest.raises(JobNotFoundError):
        await store.remove_job(Q, waiting)
    await store.add(Q, job(2))
    claimed = await claim(store)
    with pytest.raises(InvalidJobStateError):
        await store.remove_job(Q, claimed.id)
    await store.complete(Q, claimed, None)
    await store.remove_job(Q, claimed.id)
    assert sum((await store.counts(Q)).values()) == 0


async def test_clean_by_state_and_age(store: JobStore) -> None:
    for i in range(3):
        await store.add(Q, job(i))
        await store.complete(Q, await claim(store), i)
    await store.add(Q, job(9, attempts=1))
    await store.fail(Q, await claim(store), "x", None)
    assert await store.clean(Q, JobState.COMPLETED, older_than_ms=3_600_000) == 0
    await asyncio.sleep(0.05)
    assert await store.clean(Q, JobState.COMPLETED, older_than_ms=0) == 3
    counts = await store.counts(Q)
    assert counts[JobState.COMPLETED] == 0
    assert counts[JobState.FAILED] == 1


async def test_pause_and_resume(store: JobStore) -> None:
    await store.add(Q, job(1))
    await store.pause(Q)
    assert await store.is_paused(Q)
    assert (await store.fetch(Q, "t")).job is None
    counts = await store.counts(Q)
    assert counts[JobState.PAUSED] == 1
    assert counts[JobState.WAITING] == 0
    await store.add(Q, job(2))
    assert (await store.counts(Q))[JobState.PAUSED] == 2
    assert not await store.is_paused("pdf")
    await store.resume(Q)
    assert not await store.is_paused(Q)
    assert (await store.counts(Q))[JobState.WAITING] == 2
    assert (await claim(store)).record.data["orderId"] == "o1"


async def test_promote_delayed(store: JobStore) -> None:
    delayed = await store.add(Q, job(1, delay_ms=3_600_000))
    waiting = await store.add(Q, job(2))
    with pytest.raises(InvalidJobStateError):
        await store.promote(Q, waiting)
    with pytest.raises(JobNotFoundError):
        await store.promote(Q, "missing-job")
    await store.promote(Q, delayed)
    record = await store.get_job(Q, delayed)
    assert record is not None
    assert record.state is JobState.WAITING
    assert (await store.counts(Q))[JobState.DELAYED] == 0


async def test_delayed_job_comes_due(store: JobStore) -> None:
    # Timed from before the add: a loaded machine only makes the wait longer, so the
    # lower bound holds however late the first fetch runs (it measured from the fetch,
    # and failed when the fetch itself came 200 ms late).
    added = time.monotonic()
    job_id = await store.add(Q, job(1, delay_ms=400))
    fetched = await store.fetch(Q, "t")
    assert fetched.job is None
    assert 0 < fetched.wait_ms <= 400
    claimed = await claim(store)
    assert claimed.id == job_id
    # 50 ms of slack for the stores' millisecond clocks (Redis's TIME, the database's).
    assert time.monotonic() - added >= 0.35


async def test_rate_limit_window(make_store: StoreFactory) -> None:
    store = await make_store(catalogue_with(rate_limit_max=3, rate_limit_duration_ms=1000))
    await store.add_bulk(Q, [job(i) for i in range(5)])
    started = time.monotonic()
    for _ in range(3):
        fetched = await store.fetch(Q, uuid.uuid4().hex)
        assert fetched.job is not None
        await store.complete(Q, fetched.job, None)
    limited = await store.fetch(Q, "t")
    assert limited.job is None
    assert limited.rate_limited
    assert 0 < limited.wait_ms <= 1000
    await asyncio.sleep(limited.wait_ms / 1000 + 0.05)
    fetched = await store.fetch(Q, "t2")
    assert fetched.job is not None
    assert time.monotonic() - started >= 0.9
    # The limit is per queue: another queue is not held back.
    await store.add("pdf", NewJob("invoice", {"type": "invoice", "invoiceId": "i1"}))
    assert (await store.fetch("pdf", "t3")).job is not None


async def test_list_jobs_newest_first_with_paging(store: JobStore) -> None:
    ids = []
    for i in range(5):
        ids.append(await store.add(Q, job(i)))
        await asyncio.sleep(0.005)
    page1 = await store.list_jobs(Q, JobState.WAITING, offset=0, limit=2)
    page2 = await store.list_jobs(Q, JobState.WAITING, offset=2, limit=2)
    page3 = await store.list_jobs(Q, JobState.WAITING, offset=4, limit=2)
    assert [r.id for r in page1 + page2 + page3] == list(reversed(ids))
    assert await store.list_jobs(Q, JobState.FAILED) == []


async def test_progress_and_logs(store: JobStore) -> None:
    job_id = await store.add(Q, job(1))
    claimed = await claim(store)
    await store.update_progress(Q, claimed, 40)
    await store.add_log(Q, claimed, "rendered template")
    await store.add_log(Q, claimed, "connected to smtp")
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.progress == 40
    assert record.logs == ["rendered template", "connected to smtp"]
    await store.update_progress(Q, claimed, {"step": "send", "pct": 90})
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.progress == {"step": "send", "pct": 90}


async def _recover_until(
    store: JobStore, job_id: str, state: JobState, deadline_s: float = 6.0
) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        await store.recover_stalled(Q)
        record = await store.get_job(Q, job_id)
        assert record is not None
        if record.state is state:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"job did not become {state} in time")


async def test_stalled_job_is_recovered_then_failed(make_store: StoreFactory) -> None:
    store = await make_store(
        catalogue_with(lock_duration_ms=500, stalled_interval_ms=300), max_stalled_count=1
    )
    job_id = await store.add(Q, job(1))
    await claim(store)  # the worker "dies": no extend, no complete
    await _recover_until(store, job_id, JobState.WAITING)
    second = await claim(store)
    assert second.id == job_id
    await _recover_until(store, job_id, JobState.FAILED)
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.failed_reason is not None
    assert "stalled" in record.failed_reason


async def test_extended_lock_is_not_recovered(make_store: StoreFactory) -> None:
    store = await make_store(catalogue_with(lock_duration_ms=500, stalled_interval_ms=300))
    job_id = await store.add(Q, job(1))
    claimed = await claim(store)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        assert await store.extend_locks(Q, [claimed]) == []
        await store.recover_stalled(Q)
        await asyncio.sleep(0.15)
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.ACTIVE
    lost = await store.extend_locks(Q, [ClaimedJob(claimed.record, "forged")])
    assert lost == [job_id]
    await store.complete(Q, claimed, None)


async def test_completed_retention_by_count(make_store: StoreFactory) -> None:
    store = await make_store(catalogue_with(keep_completed_count=3))
    await store.add_bulk(Q, [job(i) for i in range(6)])
    for _ in range(6):
        await store.complete(Q, await claim(store), None)
    completed = await store.list_jobs(Q, JobState.COMPLETED, limit=10)
    assert [r.data["orderId"] for r in completed] == ["o5", "o4", "o3"]


async def test_failed_retention_by_count(make_store: StoreFactory) -> None:
    store = await make_store(catalogue_with(keep_failed_count=2))
    await store.add_bulk(Q, [job(i, attempts=1) for i in range(4)])
    for _ in range(4):
        await store.fail(Q, await claim(store), "x", None)
    assert (await store.counts(Q))[JobState.FAILED] == 2


async def test_oldest_waiting(store: JobStore) -> None:
    assert await store.oldest_waiting_ms(Q) is None
    before = time.time() * 1000
    await store.add(Q, job(1))
    await asyncio.sleep(0.01)
    await store.add(Q, job(2))
    oldest = await store.oldest_waiting_ms(Q)
    assert oldest is not None
    assert before - 2_000 <= oldest <= time.time() * 1000


async def test_health(store: JobStore) -> None:
    health = await store.health()
    assert health.kind == store.kind
    assert health.reachable
    assert health.latency_ms is not None
    assert health.latency_ms >= 0


async def test_two_processes_never_claim_one_job_twice(
    make_store: StoreFactory, test_catalogue: Catalogue
) -> None:
    first = await make_store(test_catalogue)
    second = await make_store(test_catalogue)
    await first.add_bulk(Q, [job(i) for i in range(40)])
    seen: list[str] = []

    async def drain(store: JobStore) -> None:
        while True:
            fetched = await store.fetch(Q, uuid.uuid4().hex)
            if fetched.job is None:
                return
            seen.append(fetched.job.id)
            await store.complete(Q, fetched.job, None)

    await asyncio.gather(drain(first), drain(first), drain(second), drain(second))
    assert len(seen) == len(set(seen)) == 40


async def test_wait_for_work_wakes_on_add(
    make_store: StoreFactory, test_catalogue: Catalogue
) -> None:
    consumer = await make_store(test_catalogue)
    producer = await make_store(test_catalogue)
    await consumer.wait_for_work(Q, 50)  # nothing there: returns after the timeout
    waiter = asyncio.create_task(consumer.wait_for_work(Q, 10_000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await producer.add(Q, job(1))
    await asyncio.wait_for(waiter, 2.0)
    assert time.monotonic() - started < 1.0
    assert (await consumer.fetch(Q, "t")).job is not None


# -- finished_timings (issue 19: the latency charts) ------------------------------------


def timings_of(record: Any, delay_ms: int = 0) -> tuple[int, int | None, int]:
    """What ``finished_timings`` must say of a job finished at its first attempt."""
    started, finished = record.processed_at_ms, record.finished_at_ms
    return finished, max(started - record.created_at_ms - delay_ms, 0), finished - started


async def test_finished_timings_measure_wait_from_due_and_run_from_start(
    store: JobStore,
) -> None:
    now = int(time.time() * 1000)
    plain = await store.add(Q, job(1))
    claimed = await claim(store)
    await store.complete(Q, claimed, None)
    delayed = await store.add(Q, job(2, delay_ms=300))
    claimed = await claim(store)
    assert claimed.id == delayed
    await store.fail(Q, claimed, "no", None, retry=False)  # failed jobs count too
    retried = await store.add(Q, job(3, attempts=2, backoff_delay_ms=0))
    await store.fail(Q, await claim(store), "once", None)
    claimed = await claim(store)
    assert claimed.id == retried
    await store.complete(Q, claimed, None)
    records = {job_id: await store.get_job(Q, job_id) for job_id in (plain, delayed, retried)}
    found = await store.finished_timings(
        Q, now - 60_000, now + 60_000, bucket_ms=120_000, per_bucket=100
    )
    assert all(timing.weight == 1 for timing in found)
    again = records[retried]
    assert again is not None and again.processed_at_ms and again.finished_at_ms
    # The retried job: its last attempt's run time, no wait (back-off is not queueing).
    expected = {
        timings_of(records[plain]),
        timings_of(records[delayed], delay_ms=300),
        (again.finished_at_ms, None, again.finished_at_ms - again.processed_at_ms),
    }
    assert {(t.finished_ms, t.wait_ms, t.run_ms) for t in found} == expected
    assert all(t.run_ms >= 0 and (t.wait_ms is None or t.wait_ms >= 0) for t in found)
    # Only jobs finished in [since, until) count.
    first = min(t.finished_ms for t in found)
    before = await store.finished_timings(Q, now - 60_000, first, bucket_ms=60_000, per_bucket=9)
    assert before == []


async def test_finished_timings_sample_a_crowded_bucket_with_weights(store: JobStore) -> None:
    now = int(time.time() * 1000)
    await store.add_bulk(Q, [job(n) for n in range(12)])
    for _ in range(12):
        await store.complete(Q, await claim(store), None)
    whole = await store.finished_timings(
        Q, now - 300_000, now + 300_000, bucket_ms=600_000, per_bucket=12
    )
    assert (len(whole), {t.weight for t in whole}) == (12, {1.0})
    sample = await store.finished_timings(
        Q, now - 300_000, now + 300_000, bucket_ms=600_000, per_bucket=4
    )
    # At most per_bucket jobs of the bucket, each standing for its share of the 12.
    assert 1 <= len(sample) <= 4
    assert {t.weight for t in sample} == {12 / len(sample)}
    assert {(t.finished_ms, t.wait_ms, t.run_ms) for t in sample} <= {
        (t.finished_ms, t.wait_ms, t.run_ms) for t in whole
    }
