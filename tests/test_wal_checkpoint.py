"""The write-ahead log is checkpointed off the event loop (``ils.db.checkpoint``).

``bench/orders.py`` put the paced p99 of ``POST /api/orders`` at 49 to 52 ms with
SQLite's automatic checkpoints, which copy the log into the database inside the
commit that crosses 1,000 pages, on the event loop; with the checkpoints in a thread
it was 31 to 43 ms. A checkpoint from a thread must still let the log start over, or
it grows without end (300 MB in two minutes of that benchmark).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from ils.db.checkpoint import RESTART_BYTES, WalCheckpointer
from ils.db.transactions import WriteTurn
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually, still

PAGE_BYTES = 4096


def _checkpointing() -> bool:
    return any(task.get_name() == "ils-wal-checkpoints" for task in asyncio.all_tasks())


async def test_no_commit_of_the_job_system_checkpoints_the_log(tmp_path: Path) -> None:
    system = await JobSystem.open(Settings(data_dir=tmp_path))
    try:
        async with system.engine.connect() as conn:
            pages = await conn.scalar(text("PRAGMA wal_autocheckpoint"))
        assert pages == 0
        await eventually(_checkpointing, 5)
    finally:
        await system.close()
    assert not _checkpointing()


def _writer(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE IF NOT EXISTS filler (data BLOB)")
    return connection


def _write_pages(connection: sqlite3.Connection, rows: int) -> None:
    for _ in range(rows):
        connection.execute("INSERT INTO filler VALUES (randomblob(?))", (PAGE_BYTES,))


def _log_bytes(path: Path) -> int:
    return path.with_name(f"{path.name}-wal").stat().st_size


async def test_checkpoints_keep_the_log_short_where_commits_do_not(tmp_path: Path) -> None:
    unchecked = tmp_path / "unchecked.db"
    writer = _writer(unchecked)
    for _ in range(4):
        _write_pages(writer, 500)
    unchecked_bytes = _log_bytes(unchecked)
    assert unchecked_bytes > 4 * RESTART_BYTES
    writer.close()

    checked = tmp_path / "checked.db"
    writer = _writer(checked)
    turn = WriteTurn()
    checkpointer = WalCheckpointer(checked, turn.background)
    try:
        for _ in range(4):
            _write_pages(writer, 500)
            await checkpointer.checkpoint()
        _write_pages(writer, 1)
        # as many pages written, yet the log never held more than one batch of them
        assert _log_bytes(checked) <= unchecked_bytes / 3
        assert checkpointer.checkpoints == 4
        assert checkpointer.restarts == 4
    finally:
        writer.close()


async def test_a_restart_waits_for_the_writers_of_the_process(tmp_path: Path) -> None:
    """The step that lets the log start over holds the write turn: no writer of the
    process appends between it and the next write."""
    path = tmp_path / "turn.db"
    writer = _writer(path)
    _write_pages(writer, 2 * RESTART_BYTES // PAGE_BYTES)
    turn = WriteTurn()
    checkpointer = WalCheckpointer(path, turn.background)
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold() -> None:
        async with turn():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    pending = asyncio.create_task(checkpointer.checkpoint())
    await still(pending.done, 0.3, message="restarted the log while a request wrote")
    release.set()
    await asyncio.gather(holder, pending)
    assert checkpointer.restarts == 1
    writer.close()


async def test_a_writer_waiting_for_the_pool_does_not_hold_the_write_turn(
    tmp_path: Path,
) -> None:
    """1,000 users in ``bench/users.py`` timed out every order: a job in the turn
    waited for a pooled connection while the connections were with requests, and
    every writer waited behind it. A writer now takes its connection first."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from ils.db.transactions import Transactions

    url = f"sqlite+ilsinline:///{tmp_path / 'pool.db'}"
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    turn = WriteTurn()
    writes = Transactions(engine, turn.background)
    try:
        async with engine.connect() as only:  # the pool's one connection, busy
            await only.execute(text("SELECT 1"))
            writer = asyncio.create_task(writes.run(lambda conn: None))
            await still(writer.done, 0.1)  # waits for the connection...
            async with asyncio.timeout(1), turn():  # ...not in the turn
                pass
        await asyncio.wait_for(writer, 5)
    finally:
        await engine.dispose()
