"""What only the local store has to get right: its tables and migration, exclusive
claims across engines and OS processes, lock leases on the injected clock, the rate
limiter's window, retention, and that bad input or a dead database changes nothing.

Every test runs on SQLite (a file) and on PostgreSQL; the contract suite
(``test_store_contract.py``) covers the behaviour shared with the Redis store.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import make_url

from ils.clock import Clock, ManualClock, SystemClock
from ils.db.engine import READ_ONLY_OPTION, Base, create_engine, session_factory
from ils.db.migrations import alembic_config, upgrade_database
from ils.errors import (
    InvalidPayloadError,
    JobNotFoundError,
    LockLostError,
    StoreUnavailableError,
    UnknownQueueError,
)
from ils.jobs.catalogue import Catalogue, Retention
from ils.jobs.model import ClaimedJob, JobOptions, JobState, NewJob
from ils.jobs.stores.local.claim import PrunePlan, RetentionSchedule
from ils.jobs.stores.local.sql import JOBS, LOGS, STALLED_REASON
from ils.jobs.stores.local.store import LocalJobStore
from tests.faults.wait import eventually
from tests.support.stores import Q, job
from tests.support.stores import email_catalogue as catalogue

ROOT = Path(__file__).resolve().parents[2]
OUR_TABLES = {"ils_jobs", "ils_job_logs", "ils_queue_state"}
MakeStore = Callable[..., LocalJobStore]


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def url(db_url: str) -> str:
    await upgrade_database(db_url)
    return db_url


@pytest.fixture
async def make(url: str) -> AsyncIterator[MakeStore]:
    """Builds stores on their own engines, like processes of one deployment."""
    made: list[LocalJobStore] = []

    def factory(
        cat: Catalogue | None = None, clock: Clock | None = None, **kw: Any
    ) -> LocalJobStore:
        store = LocalJobStore(
            create_engine(url),
            cat or catalogue(),
            clock=clock or SystemClock(),
            poll_interval_ms=20,
            **kw,
        )
        made.append(store)
        return store

    yield factory
    for store in made:
        await store.close()


async def sql(url: str, query: Any, *, read_only: bool = False) -> Any:
    """One value read on a connection of its own (``read_only``: a SQLite read that
    does not wait for the write lock, as while another transaction holds it)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if read_only:
                await conn.execution_options(**{READ_ONLY_OPTION: True})
            return (await conn.execute(query)).scalar()
    finally:
        await engine.dispose()


# -- schema -------------------------------------------------------------------------


async def test_migration_matches_the_tables(url: str) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    ours = [c for c in changes if OUR_TABLES & set(_tables_named(c))]
    assert ours == []


def _tables_named(change: Any) -> list[str]:
    """The table names mentioned in one ``compare_metadata`` entry (nested or not)."""
    if isinstance(change, list):
        return [name for item in change for name in _tables_named(item)]
    names = []
    for part in change:
        table = getattr(part, "table", None)
        names.append(getattr(table, "name", None) or getattr(part, "name", None) or str(part))
    return [str(n) for n in names]


async def test_downgrade_removes_the_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "base"))
        async with engine.connect() as conn:
            left = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert not OUR_TABLES & left
    await upgrade_database(url)


# -- claiming -----------------------------------------------------------------------


async def test_stores_on_separate_engines_never_share_a_job(make: MakeStore) -> None:
    stores = [make() for _ in range(3)]
    await stores[0].add_bulk(Q, [job(i) for i in range(90)])
    seen: list[str] = []

    async def drain(store: LocalJobStore) -> None:
        while (fetched := await store.fetch(Q, f"t{len(seen)}")).job is not None:
            seen.append(fetched.job.id)
            await store.complete(Q, fetched.job, None)

    await asyncio.gather(*(drain(s) for s in stores for _ in range(3)))
    assert len(seen) == len(set(seen)) == 90


DRAIN = """
import asyncio, sys, time
from ils.clock import SystemClock
from ils.db.engine import create_engine
from ils.jobs.catalogue import build_catalogue
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.local.claim import PrunePlan, RetentionSchedule
from ils.settings import Settings
from tests.faults.wait import eventually

async def main(url, start):
    cat = build_catalogue(Settings(queues={"email": {"rate_limit_max": 0}}))
    store = LocalJobStore(create_engine(url), cat, clock=SystemClock())
    await asyncio.sleep(max(start - time.time(), 0))
    while (fetched := await store.fetch("email", "w")).job is not None:
        print(fetched.job.id, flush=True)
        await asyncio.sleep(0.002)
        await store.complete("email", fetched.job, None)
    await store.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@pytest.mark.slow
async def test_worker_processes_never_share_a_job(url: str, make: MakeStore) -> None:
    await make().add_bulk(Q, [job(i) for i in range(300)])
    start = str(time.time() + 3)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", DRAIN, url, start, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    assert [p.returncode for p in procs] == [0, 0, 0]
    claims = [out.decode().split() for out, _ in outputs]
    every = [job_id for ids in claims for job_id in ids]
    assert len(every) == len(set(every)) == 300
    assert sum(1 for ids in claims if ids) >= 2  # the processes really overlapped


async def test_fetch_order_puts_due_jobs_behind_waiting_ones(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock)
    await store.add(Q, job(1))
    await store.add(Q, job(2, delay_ms=100))
    await store.add(Q, job(3, delay_ms=5_000))
    clock.advance(200)
    await store.add(Q, job(4))
    order = []
    while (fetched := await store.fetch(Q, "t")).job is not None:
        order.append(fetched.job.record.data["orderId"])
    assert order == ["o1", "o2", "o4"]
    assert fetched.wait_ms == 4_800
    assert not fetched.rate_limited


# -- locks on the injected clock ------------------------------------------------------


async def test_lock_lease_expires_then_job_is_recovered_then_failed(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock, max_stalled_count=1)
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
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.WAITING
    second = (await store.fetch(Q, "b")).job
    assert second is not None
    assert second.id == job_id
    with pytest.raises(LockLostError):
        await store.fail(Q, first, "late", None)  # the first worker's token is gone
    clock.advance(1001)
    assert await store.recover_stalled(Q) == [job_id]
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.failed_reason == STALLED_REASON
    assert record.finished_at_ms == clock.now_ms()


async def test_no_stall_allowed_fails_at_once(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock, max_stalled_count=0)
    job_id = await store.add(Q, job(1))
    assert (await store.fetch(Q, "a")).job is not None
    clock.advance(5_000)
    assert await store.recover_stalled(Q) == [job_id]
    assert (await store.counts(Q))[JobState.FAILED] == 1


# -- rate limit ---------------------------------------------------------------------


async def test_rate_limit_window_opens_with_the_first_job_after_the_last(
    make: MakeStore,
) -> None:
    clock = ManualClock()
    store = make(catalogue(rate_limit_max=2, rate_limit_duration_ms=1000), clock=clock)
    await store.add_bulk(Q, [job(i) for i in range(6)])
    assert (await store.fetch(Q, "a")).job is not None
    clock.advance(300)
    second = (await store.fetch(Q, "b")).job
    assert second is not None
    limited = await store.complete(Q, second, None, fetch_next=True)
    assert limited is not None
    assert limited.job is None
    assert limited.rate_limited
    assert limited.wait_ms == 700
    clock.advance(700)
    assert (await store.fetch(Q, "c")).job is not None  # a new window opens now
    clock.advance(999)
    assert (await store.fetch(Q, "d")).job is not None
    assert (await store.fetch(Q, "e")).wait_ms == 1
    clock.advance(1)
    assert (await store.fetch(Q, "f")).job is not None


async def test_a_claim_names_the_rate_window_it_was_counted_in(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(catalogue(rate_limit_max=2, rate_limit_duration_ms=1000), clock=clock)
    await store.add_bulk(Q, [job(i) for i in range(3)])
    opened = clock.now_ms()
    first = (await store.fetch(Q, "a")).job
    clock.advance(400)
    second = (await store.fetch(Q, "b")).job
    clock.advance(600)
    third = (await store.fetch(Q, "c")).job
    assert first is not None and second is not None and third is not None
    assert (first.rate_window_ms, second.rate_window_ms) == (opened, opened)
    assert third.rate_window_ms == opened + 1000  # a new window opened with it


async def test_rate_limit_is_exact_across_stores(make: MakeStore) -> None:
    cat = catalogue(rate_limit_max=5, rate_limit_duration_ms=60_000)
    stores = [make(cat) for _ in range(3)]
    await stores[0].add_bulk(Q, [job(i) for i in range(40)])
    results = await asyncio.gather(*(store.fetch(Q, f"t{i}") for i in range(8) for store in stores))
    assert sum(1 for r in results if r.job is not None) == 5
    assert all(r.rate_limited for r in results if r.job is None)


async def test_a_claim_that_waited_for_the_lock_is_dated_when_it_claimed(pg_url: str) -> None:
    """A claim that queued behind another writer belongs to the window it claimed in.

    Reproduces a rate-limit overrun seen under load: the claim's time was read before
    waiting for the queue's row lock, so a start made after its window had closed was
    dated inside it (and refused, or counted in the wrong window).
    """
    clock = ManualClock()
    cat = catalogue(rate_limit_max=2, rate_limit_duration_ms=1000)
    stores = [
        LocalJobStore(create_engine(pg_url), cat, clock=clock, poll_interval_ms=20)
        for _ in range(2)
    ]
    holder = create_engine(pg_url)
    try:
        first, second = stores
        await first.add_bulk(Q, [job(i) for i in range(4)])
        assert (await first.fetch(Q, "a")).job is not None
        assert (await first.fetch(Q, "b")).job is not None  # the window of 2 is full
        clock.advance(900)
        async with holder.connect() as lock_conn:
            lock = await lock_conn.begin()
            await lock_conn.execute(
                text("SELECT 1 FROM ils_queue_state WHERE queue = :q FOR UPDATE"), {"q": Q}
            )
            waiting = asyncio.create_task(second.fetch(Q, "c"))

            async def blocked() -> bool:
                async with holder.connect() as probe:
                    found = await probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    )
                    return bool(found.scalar_one())

            await eventually(blocked, 10)
            clock.advance(100)  # the window ends while the claim waits for the lock
            await lock.commit()
        fetched = await asyncio.wait_for(waiting, 10)
        assert fetched.job is not None, fetched
        assert fetched.job.record.processed_at_ms == clock.now_ms()
    finally:
        for store in stores:
            await store.close()
        await holder.dispose()


# -- retention ----------------------------------------------------------------------


async def test_completed_retention_by_age(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(catalogue(keep_completed_age_s=60), clock=clock)
    old, new = await store.add_bulk(Q, [job(1), job(2)])
    first = (await store.fetch(Q, "a")).job
    assert first is not None
    await store.complete(Q, first, None)
    clock.advance(60_001)
    second = (await store.fetch(Q, "b")).job
    assert second is not None
    await store.complete(Q, second, None)
    assert await store.get_job(Q, old) is None
    assert await store.get_job(Q, new) is not None


async def test_count_retention_overshoots_by_little(make: MakeStore) -> None:
    store = make(catalogue(keep_completed_count=100))
    await store.add_bulk(Q, [job(i) for i in range(130)])
    while (fetched := await store.fetch(Q, "t")).job is not None:
        await store.complete(Q, fetched.job, None)
    assert 100 <= (await store.counts(Q))[JobState.COMPLETED] < 105


async def test_logs_go_with_their_job(url: str, make: MakeStore) -> None:
    store = make(catalogue(keep_completed_count=0))
    job_id = await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    await store.add_log(Q, claimed, "line")
    assert await sql(url, select(func.count()).select_from(LOGS)) == 1
    await store.complete(Q, claimed, None)  # keeps no completed job
    assert await store.get_job(Q, job_id) is None
    assert await sql(url, select(func.count()).select_from(LOGS)) == 0


async def test_a_log_line_in_a_session_commits_and_rolls_back_with_it(
    url: str, make: MakeStore
) -> None:
    """A handler's line written in its own transaction (``ctx.log(..., session=)``)
    costs no transaction of its own: it exists exactly when that transaction commits."""
    store = make(catalogue())
    await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    sessions = session_factory(store._engine)
    async with sessions() as session, session.begin():
        await store.add_log_in(session, Q, claimed, "stored 3 rows")
        # Not visible to anyone else before the commit.
        assert await sql(url, select(func.count()).select_from(LOGS), read_only=True) == 0
    assert await sql(url, select(LOGS.c.line)) == "stored 3 rows"

    async with sessions() as session, session.begin():
        await store.add_log_in(session, Q, claimed, "never stored")
        await session.rollback()  # the handler failed
    assert await sql(url, select(func.count()).select_from(LOGS)) == 1


async def test_a_log_line_in_another_databases_session_is_written_at_once(
    url: str, make: MakeStore, tmp_path: Path
) -> None:
    store = make(catalogue())
    await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        async with session_factory(other)() as session, session.begin():
            await store.add_log_in(session, Q, claimed, "written at once")
            assert await sql(url, select(LOGS.c.line)) == "written at once"
    finally:
        await other.dispose()


def test_retention_schedule_spreads_the_deletes() -> None:
    schedule = RetentionSchedule()
    keep = Retention(age_s=60, count=100)  # the count delete every 5th finish
    plans = [schedule.plan(Q, "completed", keep, now=1_000 + i) for i in range(10)]
    assert [p.by_count for p in plans] == [False, False, False, False, True] * 2
    assert [p.by_age for p in plans] == [True] + [False] * 9  # at most once a second
    assert schedule.plan(Q, "completed", keep, now=2_000).by_age
    assert schedule.plan(Q, "failed", keep, now=2_000).by_age  # per state
    keep_none = Retention(age_s=0, count=0)
    assert schedule.plan(Q, "completed", keep_none, now=2_000) == PrunePlan(True, True)


# -- operations ---------------------------------------------------------------------


async def test_retry_clears_the_failure_and_queues_behind(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock)
    failing = await store.add(Q, job(1, attempts=1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    assert await store.fail(Q, claimed, "refused", "trace") is JobState.FAILED
    waiting = await store.add(Q, job(2))
    clock.advance(1)
    await store.retry_job(Q, failing)
    record = await store.get_job(Q, failing)
    assert record is not None
    assert (record.state, record.attempts_made) == (JobState.WAITING, 0)
    assert (record.failed_reason, record.finished_at_ms, record.processed_at_ms) == (
        None,
        None,
        None,
    )
    assert record.stacktrace == ["trace"]
    order = [(await store.fetch(Q, t)).job for t in "bc"]
    assert [c.id for c in order if c] == [waiting, failing]


async def test_back_off_zero_retries_at_once_and_shows_paused(make: MakeStore) -> None:
    store = make(catalogue(backoff_delay_ms=0))
    await store.add(Q, job(1))
    claimed = (await store.fetch(Q, "a")).job
    assert claimed is not None
    assert await store.fail(Q, claimed, "x", None) is JobState.WAITING
    claimed = (await store.fetch(Q, "b")).job
    assert claimed is not None
    await store.pause(Q)
    assert await store.fail(Q, claimed, "x", None) is JobState.PAUSED


async def test_clean_respects_state_pause_and_limit(make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock)
    await store.add_bulk(Q, [job(i, delay_ms=10_000) for i in range(3)])
    await store.add_bulk(Q, [job(i) for i in range(2)])
    clock.advance(1)
    assert await store.clean(Q, JobState.DELAYED, limit=2) == 2
    await store.pause(Q)
    assert await store.clean(Q, JobState.WAITING) == 0
    assert await store.clean(Q, JobState.PAUSED) == 2
    with pytest.raises(ValueError, match="active"):
        await store.clean(Q, JobState.ACTIVE)
    assert (await store.counts(Q))[JobState.DELAYED] == 1


async def test_job_ids_are_per_queue(make: MakeStore) -> None:
    store = make()
    await store.add(Q, job(1, job_id="same"))
    await store.add("pdf", NewJob("invoice", {"invoiceId": "i1"}, JobOptions(job_id="same")))
    email, pdf = await store.get_job(Q, "same"), await store.get_job("pdf", "same")
    assert email is not None
    assert pdf is not None
    assert (email.name, pdf.name) == ("order-confirmation", "invoice")
    with pytest.raises(JobNotFoundError):
        await store.promote("pdf", "missing")
    with pytest.raises(UnknownQueueError):
        await store.fetch("nope", "t")


# -- waiting for work ---------------------------------------------------------------


async def test_wait_for_work_sees_due_jobs_and_ignores_a_paused_queue(make: MakeStore) -> None:
    store = make()
    started = time.monotonic()
    await store.add(Q, job(1, delay_ms=300))
    await store.wait_for_work(Q, 5_000)
    assert 0.2 <= time.monotonic() - started < 2.0
    await store.pause(Q)
    started = time.monotonic()
    await store.wait_for_work(Q, 300)  # a job waits, but the queue hands out nothing
    assert time.monotonic() - started >= 0.25
    waiter = asyncio.create_task(store.wait_for_work(Q, 5_000))
    await asyncio.sleep(0.05)
    await store.resume(Q)
    await asyncio.wait_for(waiter, 1.0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL readers never wait
async def test_sqlite_readers_do_not_wait_for_a_writer(url: str, make: MakeStore) -> None:
    store = make()
    await store.add(Q, job(1))
    holder = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        counts = await asyncio.wait_for(store.counts(Q), 2.0)
        assert counts[JobState.WAITING] == 1
        adding = asyncio.create_task(store.add(Q, job(2)))
        await asyncio.wait_for(store.wait_for_work(Q, 1_000), 2.0)
        await asyncio.sleep(0.1)
        assert not adding.done()  # writers wait their turn
    finally:
        holder.execute("COMMIT")
        holder.close()
    await asyncio.wait_for(adding, 5.0)
    assert (await store.counts(Q))[JobState.WAITING] == 2


# -- bad input and outages ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        NewJob("x", {"when": object()}),
        NewJob("x", {"ratio": math.nan}),
        NewJob("x", ["not", "an", "object"]),  # type: ignore[arg-type]
        NewJob("", {}),
        job(1, priority=-1),
        job(1, priority=2**21 + 1),
        job(1, delay_ms=-5),
        job(1, attempts=0),
        job(1, backoff_delay_ms=-1),
        job(1, job_id=""),
        job(1, job_id="x" * 256),
        # The limits every store shares (JobOptions.problems): Redis refuses these, so
        # the local store must too, or a job could be refused only after a fall-back.
        job(1, job_id="42"),
        job(1, delay_ms=366 * 24 * 3600 * 1000),
        job(1, attempts=101),
    ],
)
async def test_bad_jobs_are_refused_and_nothing_is_added(make: MakeStore, bad: NewJob) -> None:
    store = make()
    with pytest.raises(InvalidPayloadError) as refused:
        await store.add_bulk(Q, [job(1), bad])
    assert "object at" not in str(refused.value)  # no values in the message
    assert sum((await store.counts(Q)).values()) == 0


async def test_bad_results_leave_the_job_running(make: MakeStore) -> None:
    store = make()
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
    await store.complete(Q, claimed, {"ok": [1, "two"]})
    record = await store.get_job(Q, job_id)
    assert record is not None
    assert record.result == {"ok": [1, "two"]}
    assert json.loads(json.dumps(record.data)) == record.data


async def test_health_names_the_database_without_credentials(url: str, make: MakeStore) -> None:
    health = await make().health()
    assert health.reachable
    assert health.kind == "local"
    assert health.details["dialect"] in ("sqlite", "postgresql")
    assert health.details["database"] in url
    assert "postgres@" not in json.dumps(health.details)


async def test_unreachable_database_is_reported_not_raised_as_a_bug() -> None:
    engine = create_engine("postgresql+asyncpg://ils:secret@127.0.0.1:1/none")
    store = LocalJobStore(engine, catalogue())
    try:
        health = await store.health()
        assert not health.reachable
        assert health.error is not None
        assert "secret" not in health.error
        with pytest.raises(StoreUnavailableError):
            await store.add(Q, job(1))
        with pytest.raises(StoreUnavailableError):
            await store.fetch(Q, "t")
    finally:
        await store.close()


async def test_claimed_record_matches_the_stored_row(url: str, make: MakeStore) -> None:
    clock = ManualClock()
    store = make(clock=clock)
    job_id = await store.add(Q, job(1, priority=4, attempts=5, backoff_delay_ms=7))
    claimed: ClaimedJob | None = (await store.fetch(Q, "tok")).job
    assert claimed is not None
    assert claimed.record == await store.get_job(Q, job_id)
    assert claimed.record.processed_at_ms == clock.now_ms()
    assert (claimed.record.priority, claimed.record.attempts) == (4, 5)
    stored = await sql(url, select(JOBS.c.lock_until_ms).where(JOBS.c.id == job_id))
    assert stored == clock.now_ms() + 1000


async def test_an_idle_stalled_check_takes_no_write_lock(tmp_path: Path) -> None:
    """The stalled check runs every few seconds for each queue in every process; with
    nothing stalled it must not wait for (or take) SQLite's one write lock."""
    from ils.jobs.system import JobSystem
    from ils.settings import Settings

    settings = Settings(data_dir=tmp_path)
    system = await JobSystem.open(settings)
    try:
        other_process = sqlite3.connect(tmp_path / "ils.db", isolation_level=None)
        other_process.execute("BEGIN IMMEDIATE")
        try:
            recovered = await asyncio.wait_for(system.local.recover_stalled("email"), 2)
        finally:
            other_process.execute("ROLLBACK")
            other_process.close()
    finally:
        await system.close()
    assert recovered == []
