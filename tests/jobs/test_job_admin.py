"""JobAdmin: one fan-out over the two stores of Redis mode, company scope, each
action, and the local store working inside a caller's transaction.

The stores are real: Redis with a local store on SQLite or PostgreSQL (production's
pair after an outage), and the memory store with SQLite, which needs no server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import create_engine, session_factory
from ils.errors import InvalidJobStateError, JobNotFoundError
from ils.jobs.admin import JobAction, JobAdmin
from ils.jobs.catalogue import Catalogue
from ils.jobs.model import JobOptions, JobState, NewJob
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore
from tests.support.stores import (
    PAIRS,
    Closer,
    Q,
    admin_over,
    open_store,
    store_pair,
    unlimited_catalogue,
)

LOCAL_KINDS = ("sqlite", "postgres")


@pytest.fixture
def catalogue() -> Catalogue:
    """No rate limit on the queue: a fetch claims the waiting job at once."""
    return unlimited_catalogue(Q)


@pytest.fixture(params=PAIRS)
async def pair(
    request: pytest.FixtureRequest, catalogue: Catalogue
) -> AsyncIterator[tuple[JobStore, JobStore]]:
    async with store_pair(request, catalogue) as stores:
        yield stores


@pytest.fixture
def admin(pair: tuple[JobStore, JobStore]) -> JobAdmin:
    """An admin of every company over both stores."""
    return admin_over(*pair)


def new_job(n: int, company: str | None = None, **options: Any) -> NewJob:
    """Job ``job-NN``: ids grow with the order of adding, so "newest first" is
    descending ids whichever store took each job."""
    data = {"type": "order-confirmation", "orderId": f"o{n}", "userId": "u1"}
    options = {"job_id": f"job-{n:02d}", "company_id": company, **options}
    return NewJob("order-confirmation", data, JobOptions(**options))


async def failed(store: JobStore, n: int, company: str | None = None) -> str:
    """Add job ``n`` and fail it for good (the queue must have no other waiting job)."""
    job_id = await store.add(Q, new_job(n, company, attempts=1))
    fetched = await store.fetch(Q, uuid.uuid4().hex)
    assert fetched.job is not None and fetched.job.id == job_id
    await store.fail(Q, fetched.job, "the order has no lens data", None, retry=False)
    return job_id


async def state_of(store: JobStore, job_id: str) -> JobState | None:
    record = await store.get_job(Q, job_id)
    return None if record is None else record.state


def ids(jobs: Any) -> list[str]:
    return [job.id for job in jobs]


# -- reading -----------------------------------------------------------------------------


async def test_pages_merge_both_stores_newest_first(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    for n in range(1, 6):
        await (first if n % 2 else second).add(Q, new_job(n))
    pages = [await admin.list_jobs(Q, JobState.WAITING, offset=o, limit=2) for o in (0, 2, 4)]
    assert [ids(page.jobs) for page in pages] == [
        ["job-05", "job-04"],
        ["job-03", "job-02"],
        ["job-01"],
    ]
    assert {page.total for page in pages} == {5}
    assert not any(page.truncated for page in pages)
    assert {job.store for job in pages[0].jobs} == {first.kind, second.kind}
    assert (await admin.counts(Q))[JobState.WAITING] == 5


async def test_one_store_holding_the_jobs_is_paged_directly(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    _, second = pair
    for n in range(1, 4):
        await second.add(Q, new_job(n))
    page = await admin.list_jobs(Q, JobState.WAITING, offset=1, limit=5)
    assert (ids(page.jobs), page.total) == (["job-02", "job-01"], 3)
    empty = await admin.list_jobs(Q, JobState.FAILED, offset=0, limit=5)
    assert (empty.jobs, empty.total) == ([], 0)


async def test_search_covers_both_stores(admin: JobAdmin, pair: tuple[JobStore, JobStore]) -> None:
    first, second = pair
    for n in range(1, 5):
        await (first if n % 2 else second).add(Q, new_job(n))
    assert ids((await admin.search_jobs(Q, JobState.WAITING, "O3")).jobs) == ["job-03"]
    found = await admin.search_jobs(Q, JobState.WAITING, "order-conf", offset=1, limit=2)
    assert (ids(found.jobs), found.total) == (["job-03", "job-02"], 4)


async def test_a_company_sees_its_own_jobs_only(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    await first.add(Q, new_job(1, "c1"))
    await second.add(Q, new_job(2, "c2"))
    await second.add(Q, new_job(3, "c1"))
    await first.add(Q, new_job(4))  # the platform's, no company
    mine = admin.for_company("c1")
    assert ids((await mine.list_jobs(Q, JobState.WAITING)).jobs) == ["job-03", "job-01"]
    assert (await mine.list_jobs(Q, JobState.WAITING)).total == 2
    assert ids((await mine.search_jobs(Q, JobState.WAITING, "order")).jobs) == ["job-03", "job-01"]
    assert (await mine.counts(Q))[JobState.WAITING] == 2
    assert (await mine.get(Q, "job-03")).company_id == "c1"
    for other in ("job-02", "job-04"):
        assert await mine.find(Q, other) is None
        with pytest.raises(JobNotFoundError):
            await mine.get(Q, other)
    everything = await admin.list_jobs(Q, JobState.WAITING)
    assert ids(everything.jobs) == ["job-04", "job-03", "job-02", "job-01"]


async def test_a_company_acts_on_its_own_jobs_only(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    theirs = await failed(first, 1, "c2")
    mine = await failed(second, 2, "c1")
    platform = await failed(first, 3)
    company = admin.for_company("c1")
    for action in JobAction:
        with pytest.raises(JobNotFoundError):
            await company.act(action, Q, theirs)
    with pytest.raises(JobNotFoundError):
        await company.retry(Q, platform)
    assert await state_of(first, theirs) is JobState.FAILED
    assert await company.retry_failed(Q) == 1
    assert await state_of(second, mine) is JobState.WAITING
    assert await state_of(first, theirs) is JobState.FAILED
    assert await state_of(first, platform) is JobState.FAILED
    # Cleaning: the company's own, by age, at most ``limit``.
    await second.add(Q, new_job(4, "c1"))
    assert await company.clean(Q, JobState.WAITING, older_than_ms=3_600_000) == 0
    assert await company.clean(Q, JobState.WAITING, limit=1) == 1
    assert await company.clean(Q, JobState.WAITING) == 1
    assert await company.clean(Q, JobState.FAILED) == 0
    assert await state_of(first, theirs) is JobState.FAILED
    # A queue switch stops every company's jobs.
    for switch in (company.pause, company.resume):
        with pytest.raises(PermissionError):
            await switch(Q)
    assert not await first.is_paused(Q)


# -- acting --------------------------------------------------------------------------------


async def test_each_action_in_the_store_holding_the_job(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    failed_id = await failed(first, 1, "c1")
    delayed_id = await second.add(Q, new_job(2, "c1", delay_ms=3_600_000))
    waiting_id = await first.add(Q, new_job(3, "c1"))

    before = await admin.retry(Q, failed_id)
    assert (before.id, before.state) == (failed_id, JobState.FAILED)
    assert await state_of(first, failed_id) is JobState.WAITING
    with pytest.raises(InvalidJobStateError) as refused:
        await admin.retry(Q, failed_id)
    assert (refused.value.operation, refused.value.state) == ("retry", "waiting")

    assert (await admin.promote(Q, delayed_id)).state is JobState.DELAYED
    assert await state_of(second, delayed_id) is JobState.WAITING
    with pytest.raises(InvalidJobStateError):
        await admin.promote(Q, delayed_id)

    assert (await admin.remove(Q, waiting_id)).name == "order-confirmation"
    assert await state_of(first, waiting_id) is None


async def test_an_unknown_job_is_not_found(admin: JobAdmin) -> None:
    assert await admin.find(Q, "no-such-job") is None
    with pytest.raises(JobNotFoundError):
        await admin.get(Q, "no-such-job")
    for action in JobAction:
        with pytest.raises(JobNotFoundError):
            await admin.act(action, Q, "no-such-job")


async def test_bulk_handles_each_job_on_its_own(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    one = await failed(first, 1)
    two = await failed(second, 2)
    waiting = await first.add(Q, new_job(3))
    result = await admin.bulk(JobAction.RETRY, Q, [one, "nope", two, waiting, one])
    assert result.done == [one, two]
    assert set(result.skipped) == {"nope", waiting}
    assert isinstance(result.skipped["nope"], JobNotFoundError)
    assert isinstance(result.skipped[waiting], InvalidJobStateError)
    assert await state_of(second, two) is JobState.WAITING


async def test_retry_failed_clean_pause_and_resume_cover_both_stores(
    admin: JobAdmin, pair: tuple[JobStore, JobStore]
) -> None:
    first, second = pair
    await failed(first, 1, "c1")
    await failed(second, 2, "c2")
    assert await admin.retry_failed(Q) == 2
    assert (await admin.counts(Q))[JobState.WAITING] == 2
    await admin.pause(Q)
    assert [await store.is_paused(Q) for store in pair] == [True, True]
    await admin.resume(Q)
    assert [await store.is_paused(Q) for store in pair] == [False, False]
    assert await admin.clean(Q, JobState.WAITING, older_than_ms=3_600_000) == 0
    assert await admin.clean(Q, JobState.WAITING) == 2
    assert sum((await admin.counts(Q)).values()) == 0


# -- inside a caller's transaction ------------------------------------------------------------


@pytest.fixture(params=LOCAL_KINDS)
async def local(
    request: pytest.FixtureRequest, catalogue: Catalogue
) -> AsyncIterator[tuple[LocalJobStore, async_sessionmaker[AsyncSession]]]:
    """A local store whose waiting workers are woken only when told (a poll a minute),
    and sessions on its database, as the web app's requests have."""
    closers: list[Closer] = []
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    try:
        store = await open_store(
            request.param, request, catalogue, closers, poll_interval_ms=60_000
        )
        assert isinstance(store, LocalJobStore)
        engine = create_engine(url)
        closers.append(engine.dispose)
        yield store, session_factory(engine)
    finally:
        for close in closers:
            await close()


Local = tuple[LocalJobStore, async_sessionmaker[AsyncSession]]


async def test_within_a_transaction_changes_commit_or_roll_back_with_it(local: Local) -> None:
    """As a web request that writes: its transaction holds SQLite's write lock from its
    first statement, and the change must neither wait for it nor outlive a rollback."""
    store, sessions = local
    job_id = await failed(store, 1)
    admin = admin_over(store)
    for outcome in ("rollback", "commit"):
        async with store.write_turn(), sessions() as session:
            await session.execute(text("SELECT 1"))  # the request's transaction begins
            inside = admin.within(session)
            async with asyncio.timeout(10):
                await inside.retry(Q, job_id)
            assert (await inside.get(Q, job_id)).state is JobState.WAITING
            assert await state_of(store, job_id) is JobState.FAILED  # not committed yet
            await (session.rollback() if outcome == "rollback" else session.commit())
        expected = JobState.FAILED if outcome == "rollback" else JobState.WAITING
        assert await state_of(store, job_id) is expected


async def test_within_a_transaction_a_refused_action_leaves_the_others(local: Local) -> None:
    store, sessions = local
    one = await failed(store, 1)
    waiting = await store.add(Q, new_job(2))
    async with store.write_turn(), sessions() as session:
        inside = admin_over(store).within(session)
        result = await inside.bulk(JobAction.RETRY, Q, [waiting, one])
        assert (result.done, list(result.skipped)) == ([one], [waiting])
        await session.commit()
    assert await state_of(store, one) is JobState.WAITING


async def test_within_a_transaction_workers_are_woken_after_the_commit(local: Local) -> None:
    """A worker woken before the commit would find nothing and sleep a whole poll."""
    store, sessions = local
    job_id = await failed(store, 1)
    waiter = asyncio.create_task(store.wait_for_work(Q, 60_000))
    try:
        async with asyncio.timeout(10):
            # Parked once it holds its wake-up event (private: no public sign exists).
            while (wakeup := store._wakeups.waiting(Q)) is None:
                await asyncio.sleep(0)
        async with store.write_turn(), sessions() as session:
            await admin_over(store).within(session).retry(Q, job_id)
            assert not wakeup.is_set()
            await session.commit()
            assert wakeup.is_set()
        async with asyncio.timeout(10):
            await waiter
    finally:
        waiter.cancel()
