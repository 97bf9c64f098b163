"""The database pool: how many connections a process keeps, and that settings size it.

The reproduction: under ``bench/users.py --users 1000`` the embedded server opened and
closed about 1,100 SQLite connections a minute. SQLAlchemy's default pool keeps 5 and
closes every connection beyond them when it is returned; a busy web process holds
dozens at once, so each busy moment opened connections (the open, the schema parsed
again, a cold page cache) only to close them a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ils.db.engine import POSTGRES_POOL, READ_ONLY_OPTION, SQLITE_POOL, create_engine
from ils.jobs.system import JobSystem
from ils.settings import Settings

#: Connections a busy moment holds at once: more than SQLAlchemy's 5 kept, within 20.
BUSY = 15


def count_connects(engine: AsyncEngine) -> list[int]:
    """A one-item list counting the connections ``engine`` opens from now on."""
    opened = [0]

    @event.listens_for(engine.sync_engine, "connect")
    def _opened(_dbapi_connection: Any, _record: Any) -> None:
        opened[0] += 1

    return opened


async def busy_moment(engine: AsyncEngine, held: int) -> None:
    """``held`` connections checked out at once, each used, then all returned."""
    async with contextlib.AsyncExitStack() as stack:
        connections: list[AsyncConnection] = [
            await (await stack.enter_async_context(engine.connect())).execution_options(
                **{READ_ONLY_OPTION: True}  # a read each: SQLite lets them all in at once
            )
            for _ in range(held)
        ]
        await asyncio.gather(*(conn.execute(text("SELECT 1")) for conn in connections))


async def test_a_sqlite_file_keeps_the_connections_of_a_busy_moment(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ils.db'}")
    opened = count_connects(engine)
    try:
        for _ in range(3):
            await busy_moment(engine, BUSY)
        # Opened once, then reused: SQLAlchemy's default pool opened 15 + 10 + 10.
        assert opened[0] == BUSY
        assert engine.pool.size() == SQLITE_POOL[0]  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_the_settings_size_the_pool_of_the_job_system(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "var", database_pool_size=3, database_max_overflow=2
    )
    system = await JobSystem.open(settings)
    try:
        pool: Any = system.engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 2)
    finally:
        await system.close()


def test_postgresql_keeps_sqlalchemys_pool_unless_told() -> None:
    # No connection is made: the pool is sized when the engine is built.
    url = "postgresql+asyncpg://ils@127.0.0.1:1/none"
    default: Any = create_engine(url).pool
    assert (default.size(), default._max_overflow) == POSTGRES_POOL
    sized: Any = create_engine(url, pool_size=30, max_overflow=0).pool
    assert (sized.size(), sized._max_overflow) == (30, 0)


async def test_an_in_memory_database_still_opens() -> None:
    # SQLAlchemy gives memory one shared connection, which takes no pool size.
    engine = create_engine("sqlite://")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
