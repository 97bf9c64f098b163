"""The WAL is copied back from a thread, in the write turn (``ils.db.checkpoints``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection

from ils.db import checkpoints
from ils.db.checkpoints import WalCheckpointer
from ils.db.engine import create_engine
from ils.db.transactions import Transactions, WriteTurn
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually

#: Rows each writer adds, one transaction each: a few hundred WAL pages, short of the
#: 1,000 at which SQLite's own checkpoint would copy them.
ROWS = 60
WRITERS = 3


def wal_bytes(database: Path) -> int:
    wal = Path(f"{database}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def write_rows(transactions: Transactions, writer: int) -> None:
    for row in range(ROWS):

        def insert(conn: Connection, row: int = row) -> None:
            conn.exec_driver_sql(
                "INSERT INTO t (writer, row, body) VALUES (?, ?, ?)",
                (writer, row, "x" * 3000),  # about a page a row
            )

        await transactions.run(insert)


async def written_wal(tmp_path: Path, interval_s: float | None) -> int:
    """The WAL file's size after ``WRITERS`` writers added their rows side by side,
    with a checkpointer every ``interval_s`` (``None``: none)."""
    database = tmp_path / f"app-{interval_s}.db"
    engine = create_engine(f"sqlite:///{database}")
    turn = WriteTurn()
    transactions = Transactions(engine, turn)
    await transactions.run(
        lambda conn: conn.exec_driver_sql("CREATE TABLE t (writer INT, row INT, body TEXT)")
    )
    task = None
    if interval_s is not None:
        task = asyncio.create_task(WalCheckpointer(database, turn, interval_s).run())
    try:
        await asyncio.gather(*(write_rows(transactions, w) for w in range(WRITERS)))
        size = wal_bytes(database)  # before the last connection closes and removes it
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS * WRITERS
    return size


async def test_the_wal_starts_over_while_writers_keep_writing(tmp_path: Path) -> None:
    """Each copy is complete (no writer of the process appends meanwhile), so the next
    writer starts the WAL from its beginning and the file stops growing."""
    without = await written_wal(tmp_path, None)
    with_checkpoints = await written_wal(tmp_path, 0.005)
    assert with_checkpoints < without / 3, (with_checkpoints, without)


async def test_a_checkpoint_runs_on_a_thread_holding_the_write_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "app.db"
    engine = create_engine(f"sqlite:///{database}")
    turn = WriteTurn()
    transactions = Transactions(engine, turn)
    await transactions.run(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INT)"))
    seen: list[tuple[int, bool]] = []
    real = checkpoints._passive_checkpoint

    def recorded(connection: sqlite3.Connection) -> None:
        seen.append((threading.get_ident(), turn._busy))
        real(connection)

    monkeypatch.setattr(checkpoints, "_passive_checkpoint", recorded)
    checkpointer = WalCheckpointer(database, turn, 0.01)
    task = asyncio.create_task(checkpointer.run())
    try:
        await eventually(lambda: len(seen) >= 2, 10.0, message="no checkpoint ran")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
    loop_thread = threading.get_ident()
    assert all(thread != loop_thread and busy for thread, busy in seen), seen


@pytest.mark.parametrize(("interval_s", "runs"), [(0.5, True), (0.0, False)])
async def test_a_system_on_a_sqlite_file_checkpoints_unless_told_not_to(
    tmp_path: Path, interval_s: float, runs: bool
) -> None:
    system = await JobSystem.open(
        Settings(_env_file=None, data_dir=tmp_path, database_checkpoint_interval_s=interval_s)
    )
    try:
        system.start_background()
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert ("wal-checkpoints" in names) is runs
    finally:
        await system.close()
    assert "wal-checkpoints" not in {task.get_name() for task in asyncio.all_tasks()}
