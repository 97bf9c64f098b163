"""The local store's waiters share one read of every queue (issue 21).

An idle worker polls the local store for jobs other processes add. Each queue's waiter
used to read its own queue every poll, three statements in a transaction of its own
(6-8 % of a core for an idle ``ils worker`` with six queues). The waiters now share a
snapshot of all their queues (:class:`ReadinessBoard`), read in one statement at most
twice a poll interval, and still see what another process adds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ils.clock import ManualClock, SystemClock
from ils.db.engine import create_engine
from ils.db.migrations import upgrade_database
from ils.jobs.stores.local.readiness import DueTimes, ReadinessBoard
from ils.jobs.stores.local.store import LocalJobStore
from tests.faults.wait import eventually
from tests.support.statements import recorded_statements
from tests.support.stores import email_catalogue, job

QUEUES = ("email", "pdf", "notification", "ai", "oma", "scheduled")
POLL_MS = 20
WAIT_MS = 400


class CountingRead:
    """A ``read`` for the board that counts its calls and answers ``due``."""

    def __init__(self, due: DueTimes) -> None:
        self.due = due
        self.calls: list[tuple[str, ...]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def __call__(self, queues: tuple[str, ...]) -> DueTimes:
        self.calls.append(queues)
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {queue: self.due.get(queue) for queue in queues}


async def test_concurrent_askers_share_one_read_and_a_fresh_snapshot_answers() -> None:
    read = CountingRead({"email": None, "pdf": 5_000})
    board = ReadinessBoard(read, fresh_s=60)
    await board.due_at_ms("email", 1_000)  # the first read knows only e-mail
    read.gate.clear()
    asking = [asyncio.create_task(board.due_at_ms(queue, 1_000)) for queue in ("pdf", "pdf")]
    await eventually(lambda: len(read.calls) == 2)
    read.gate.set()
    assert await asyncio.gather(*asking) == [5_000, 5_000]
    assert read.calls == [("email",), ("email", "pdf")]
    # Fresh: answered without a read, however often asked.
    for _ in range(10):
        assert await board.due_at_ms("email", 1_000) is None
        assert await board.due_at_ms("pdf", 2_000) == 5_000
    assert len(read.calls) == 2


async def test_a_ready_answer_is_used_once() -> None:
    read = CountingRead({"email": 0})
    board = ReadinessBoard(read, fresh_s=60)
    assert await board.due_at_ms("email", 1_000) == 0
    assert await board.due_at_ms("email", 1_000) == 0
    # Claimable is answered once per read: a stale "ready" costs one empty fetch.
    assert len(read.calls) == 2


async def test_a_stale_snapshot_is_read_again() -> None:
    read = CountingRead({"email": None})
    board = ReadinessBoard(read, fresh_s=0)
    for _ in range(3):
        assert await board.due_at_ms("email", 1_000) is None
    assert len(read.calls) == 3


async def test_a_failed_read_reaches_its_askers_and_the_next_ask_reads_again() -> None:
    read = CountingRead({"email": None})
    read.error = OSError("database gone")
    board = ReadinessBoard(read, fresh_s=60)
    with pytest.raises(OSError, match="database gone"):
        await board.due_at_ms("email", 1_000)
    read.error = None
    assert await board.due_at_ms("email", 1_000) is None
    assert len(read.calls) == 2


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest) -> str:
    db_url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    await upgrade_database(db_url)
    return db_url


@dataclass
class Stores:
    """Two stores on their own engines: a worker's and another process's."""

    worker: LocalJobStore
    worker_engine: AsyncEngine
    other: LocalJobStore


@pytest.fixture
async def stores(url: str) -> AsyncIterator[Stores]:
    engines = [create_engine(url) for _ in range(2)]
    worker, other = (
        LocalJobStore(engine, email_catalogue(), clock=SystemClock(), poll_interval_ms=POLL_MS)
        for engine in engines
    )
    yield Stores(worker, engines[0], other)
    await worker.close()
    await other.close()


def selects(statements: list[str]) -> list[str]:
    return [text for text in statements if text.lstrip().lower().startswith("select")]


async def test_idle_waiters_on_six_queues_read_the_store_at_most_twice_a_poll(
    stores: Stores,
) -> None:
    with recorded_statements(stores.worker_engine) as statements:
        await asyncio.gather(*(stores.worker.wait_for_work(queue, WAIT_MS) for queue in QUEUES))
    # Each waiter reading its own queue every poll: 6 x 20 polls x 3 statements. Shared:
    # one statement per half interval at most (plus the first).
    assert 1 <= len(selects(statements)) <= 2 * WAIT_MS // POLL_MS + 1


async def test_a_job_another_process_adds_ends_the_wait_on_its_queue(
    stores: Stores,
) -> None:
    waits = {
        queue: asyncio.create_task(stores.worker.wait_for_work(queue, 30_000)) for queue in QUEUES
    }
    await stores.other.add("email", job(1))  # no wake-up reaches the worker's store
    await asyncio.wait_for(waits["email"], 5)
    assert not any(task.done() for queue, task in waits.items() if queue != "email")
    for task in waits.values():
        task.cancel()
    await asyncio.gather(*waits.values(), return_exceptions=True)


def test_an_ask_right_after_a_read_ends_does_not_spin() -> None:
    """A read has just ended and its callback has not run yet; a queue asked about
    after the read began is not in it. Awaiting that finished read again does not
    yield, so the ask would spin for ever with the loop blocked (it wedged the whole
    server under bench/users.py). Run in a thread of its own: a spin cannot be
    interrupted from inside its loop."""

    async def scenario() -> list[int | None]:
        read = CountingRead({"email": None, "pdf": 5_000})
        board = ReadinessBoard(read, fresh_s=60)
        read.gate.clear()
        first = asyncio.create_task(board.due_at_ms("email", 1_000))
        await eventually(lambda: len(read.calls) == 1)
        # The read resumes first, then this ask runs before the read's callbacks.
        read.gate.set()
        second = asyncio.create_task(board.due_at_ms("pdf", 1_000))
        return list(await asyncio.gather(first, second))

    answers: list[list[int | None]] = []
    thread = threading.Thread(target=lambda: answers.append(asyncio.run(scenario())), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the ask spun on a finished read"
    assert answers == [[None, 5_000]]


async def test_a_queue_this_process_paused_is_not_ready_from_an_older_snapshot(url: str) -> None:
    """The snapshot said a delayed job comes due; the queue is paused, then the job's
    time comes while the snapshot is still fresh. The wait must see the pause (it
    returned at once before: the failing CI run of test_local_store's pause test)."""
    clock = ManualClock()
    # A long poll: the snapshot stays fresh (5 s) for the whole test.
    store = LocalJobStore(
        create_engine(url), email_catalogue(), clock=clock, poll_interval_ms=10_000
    )
    try:
        await store.add("email", job(1, delay_ms=100))
        await store.wait_for_work("email", 50)  # due in 100 ms of the store's clock
        await store.pause("email")
        clock.advance(200)
        started = time.monotonic()
        await store.wait_for_work("email", 300)
        assert time.monotonic() - started >= 0.25
    finally:
        await store.close()
