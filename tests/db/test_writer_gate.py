"""Web requests before other processes' background writers on one SQLite file.

The reproduction: ``ils worker`` beside ``ils serve`` on the embedded database, the
worker writing back to back, left the server's ``POST /api/orders`` waiting 24 s at
the median (``bench/users.py --worker-processes 1``). Here a child process is that
worker: it runs ILS's own background transactions back to back, each holding SQLite's
write lock a while, and counts them. A request of this process must get the lock after
at most the transaction in progress (and one that passed the gate as it shut), not
after the queue behind it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ils.db.engine import create_engine
from ils.db.transactions import Transactions
from ils.db.writer_gate import GATE_SUFFIX, WriterGate
from ils.testing import eventually, wait_until

#: Background transactions the child runs, and how long each holds the write lock.
BACKGROUND_WRITES = 150
HOLD_S = 0.02

#: The child: ILS's background writes (``Transactions.run``), one after the other.
BACKGROUND_WRITER = """
import asyncio, sys, time
from sqlalchemy import text
from ils.db.engine import create_engine
from ils.db.transactions import Transactions, WriteTurn

def bump(conn):
    conn.execute(text("UPDATE counter SET n = n + 1"))
    time.sleep(float(sys.argv[3]))  # a job's work inside its transaction

async def writer(transactions, count):
    for _ in range(count):
        await transactions.run(bump)

async def main():
    engine = create_engine(sys.argv[1])
    transactions = Transactions(engine, WriteTurn())
    # Ten at once, as a worker's queue runs its jobs: each writer that commits hands
    # the process's write turn to the next, which asks for the lock straight away.
    await asyncio.gather(*(writer(transactions, int(sys.argv[2]) // 10) for _ in range(10)))
    await engine.dispose()

asyncio.run(main())
"""

#: Holds the gate as a waiting request would, until killed.
GATE_HOLDER = """
import sys, time
from pathlib import Path
from ils.db.writer_gate import WriterGate
assert WriterGate(Path(sys.argv[1])).hold_for_request()
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "ils.db"


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


async def _keep_the_loop_busy() -> None:
    """A loaded web process: other work holds its event loop 5 ms at a time, so a
    request waiting for the lock tries again only that often."""
    while True:
        time.sleep(0.005)  # noqa: ASYNC251 (holding the loop is the point)
        await asyncio.sleep(0)


def test_a_waiting_request_shows_to_other_processes_until_it_is_done(database: Path) -> None:
    web, worker = WriterGate(database), WriterGate(database)
    assert not worker.requests_waiting()
    assert web.hold_for_request()
    assert worker.requests_waiting()
    assert web.hold_for_request()  # a second waiter of the same engine
    web.release_request()
    assert worker.requests_waiting()
    web.release_request()
    assert not worker.requests_waiting()
    assert stat.S_IMODE(Path(f"{database}{GATE_SUFFIX}").stat().st_mode) == 0o600


def test_a_killed_request_process_does_not_leave_the_gate_shut(
    database: Path, children: list[subprocess.Popen[str]]
) -> None:
    holder = _child(GATE_HOLDER, str(database))
    children.append(holder)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    worker = WriterGate(database)
    assert worker.requests_waiting()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    wait_until(lambda: not worker.requests_waiting(), timeout=5.0)


async def test_a_request_waits_for_the_write_in_progress_not_the_queue_behind_it(
    database: Path, children: list[subprocess.Popen[str]]
) -> None:
    url = f"sqlite:///{database}"
    engine = create_engine(url)
    transactions = Transactions(engine)
    try:
        async with transactions.write() as session:
            await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            await session.execute(text("INSERT INTO counter VALUES (0)"))

        async def background_writes() -> int:
            async with transactions.read() as session:
                return int(await session.scalar(text("SELECT n FROM counter")) or 0)

        async def started() -> bool:
            return await background_writes() > 0

        worker = _child(BACKGROUND_WRITER, url, str(BACKGROUND_WRITES), str(HOLD_S))
        children.append(worker)
        await eventually(started, timeout=20.0)

        passed_while_waiting = []
        busy = asyncio.create_task(_keep_the_loop_busy())
        for _ in range(5):
            before = await background_writes()
            async with transactions.request(reading=False) as session:
                got_the_lock_at = int(await session.scalar(text("SELECT n FROM counter")) or 0)
                await session.execute(text("UPDATE counter SET n = n"))
            passed_while_waiting.append(got_the_lock_at - before)
        busy.cancel()
        # The child was still writing throughout (else the figures say nothing).
        assert await background_writes() < BACKGROUND_WRITES, "the child finished too soon"
        assert max(passed_while_waiting) <= 2, passed_while_waiting
    finally:
        await engine.dispose()
