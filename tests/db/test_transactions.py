"""Each way of writing holds the process's SQLite write turn from BEGIN to COMMIT and
not a turn of the loop longer.

Every other writer of the process queues for the turn, so a holder that gives the loop
up makes them all wait a pass of a busy loop. SQLAlchemy's async session and connection
close in a task of their own on leaving their ``async with`` (two passes of the loop);
under ``bench/users.py`` (2026-12-07 evening) the turn was held 27-89 ms a transaction
for 2-5 ms of SQLite work, closing included, and ``POST /api/orders`` queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from ils.db.engine import create_engine
from ils.db.transactions import Transactions, WriteTurn


class LoopWatch:
    """A task that looks at the turn on every pass of the loop it gets."""

    def __init__(self, turn: WriteTurn) -> None:
        self.turn = turn
        self.passes = 0
        self.passes_held = 0
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            self.passes += 1
            self.passes_held += self.turn.held
            await asyncio.sleep(0)

    async def started(self) -> None:
        while self.passes == 0:
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


@contextlib.asynccontextmanager
async def _transactions(tmp_path: Path) -> AsyncIterator[Transactions]:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE written (x INTEGER)")
        yield Transactions(engine, WriteTurn())
    finally:
        await engine.dispose()


INSERT = text("INSERT INTO written (x) VALUES (1)")


async def _session_write(tx: Transactions) -> None:
    async with tx.write() as session:
        await session.execute(INSERT)


async def _request_write(tx: Transactions) -> None:
    async with tx.request(reading=False) as session:
        await session.execute(INSERT)


async def _run_write(tx: Transactions) -> None:
    def body(conn: Connection) -> None:
        conn.execute(INSERT)

    await tx.run(body)


@pytest.mark.parametrize(
    "write",
    [_session_write, _request_write, _run_write],
    ids=["write", "request", "run"],
)
async def test_the_turn_is_not_held_across_a_pass_of_the_loop(
    tmp_path: Path, write: Callable[[Transactions], Awaitable[None]]
) -> None:
    async with _transactions(tmp_path) as tx:
        assert tx._write_turn is not None
        watch = LoopWatch(tx._write_turn)
        await watch.started()
        try:
            for _ in range(3):
                await write(tx)
            await asyncio.sleep(0)  # let the watch look once more
        finally:
            watch.stop()
        assert watch.passes_held == 0
        assert not tx._write_turn.held
        async with tx.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM written"))).scalar() == 3
