"""Alembic migrations of the app database, run by ``ils db upgrade`` and at first start.

The Alembic configuration is built in code (no ``alembic.ini`` to keep in step), and
the migration runs on a connection we open, so SQLite and PostgreSQL go through the
same path as the running app.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from ils.db.engine import READ_ONLY_OPTION, create_engine

SCRIPT_LOCATION = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our scripts, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (the newest by default).

    The models are imported before the transaction opens: on SQLite the migration
    holds the file's only write lock, and importing every mapped class under it kept
    other processes' writes waiting for a few hundred milliseconds.
    """
    import ils.db.tables  # noqa: F401  (what env.py imports, loaded outside the lock)

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision)
            )
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, ``None`` when never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            # A read: on SQLite it takes no write lock (see ``configure_sqlite``).
            conn = await conn.execution_options(**{READ_ONLY_OPTION: True})
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest revision of our migration scripts.

    Cached: finding it executes every script (~30 ms), the scripts do not change while
    a process runs, and a start asks twice (``ils check``'s database check, then
    ``ensure_schema``).
    """
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
