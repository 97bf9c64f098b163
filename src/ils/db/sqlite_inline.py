"""SQLite for the async engine, called inline on the event loop: no thread hop per call.

SQLAlchemy's ``aiosqlite`` driver runs every DBAPI call in aiosqlite's thread and
awaits it: four hops per statement (cursor, execute, fetch, close), about a quarter of
a millisecond each here, so a request of seventeen statements spent 16 ms handing
work between threads while its transaction held SQLite's only write lock. SQLite
itself answers those statements in microseconds from the page cache, which is less
than the hops cost, so this dialect calls the standard ``sqlite3`` module directly
inside SQLAlchemy's greenlet and never awaits.

The one place SQLite can wait is the write lock (``BEGIN IMMEDIATE``) while another
process writes. Blocking the loop there would stall every request, so
:func:`begin_immediate` asks with a 1 ms busy timeout and, while the lock is taken,
awaits a short sleep between tries: the loop keeps serving meanwhile. Reads in WAL
mode never wait for a writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, StaticPool
from sqlalchemy.util.concurrency import await_only, in_greenlet

#: Driver name in URLs (``sqlite+ilsinline:///path``); registered as an entry point.
DRIVER = "ilsinline"
#: SQLite's own wait for a lock on these connections: it blocks the event loop.
INLINE_BUSY_TIMEOUT_MS = 1
#: Pause (on the loop, not blocking it) between tries for the write lock.
LOCK_RETRY_S = 0.0005


class InlineCursor(sqlite3.Cursor):
    """A ``sqlite3`` cursor that passes for an async driver's.

    ``AsyncConnection.execute`` checks that the driver awaited something and raises
    ``AwaitRequired`` otherwise; each statement therefore awaits a coroutine that is
    already finished, a greenlet switch of a microsecond or two and no turn of the loop.
    """

    def execute(self, sql: str, parameters: Any = (), /) -> InlineCursor:
        super().execute(sql, parameters)
        _report_await()
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> InlineCursor:
        super().executemany(sql, seq_of_parameters)
        _report_await()
        return self

    async def _async_soft_close(self) -> None:
        """Nothing to release: rows are read straight from SQLite."""


async def _finished() -> None:
    """A coroutine that completes without suspending."""


def _report_await() -> None:
    if in_greenlet():
        await_only(_finished())


class InlineConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose cursors are :class:`InlineCursor`."""

    def cursor(self, factory: Any = InlineCursor) -> Any:
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """``pysqlite`` marked async: the async engine drives it without awaiting."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[Pool]:
        # One shared connection for an in-memory database (each new one would be empty).
        if cls._is_url_file_db(url):
            return AsyncAdaptedQueuePool
        return StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # Pool checkouts may happen on another thread at shutdown; calls never overlap.
        kwargs["check_same_thread"] = False
        kwargs["factory"] = InlineConnection
        return args, kwargs


def begin_immediate(dbapi_connection: sqlite3.Connection, deadline_s: float) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock without blocking
    the event loop (must run inside SQLAlchemy's greenlet, as engine events do).

    Raises:
        sqlite3.OperationalError: the lock stayed taken for ``deadline_s`` seconds,
            or any other error of the statement.
    """
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
        await_only(asyncio.sleep(LOCK_RETRY_S))
