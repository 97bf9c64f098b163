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

from ils.db.writer_gate import WriterGate

#: Driver name in URLs (``sqlite+ilsinline:///path``); registered as an entry point.
DRIVER = "ilsinline"
#: SQLite's own wait for a lock on these connections: it blocks the event loop.
INLINE_BUSY_TIMEOUT_MS = 1
#: Pause (on the loop, not blocking it) between tries for the write lock.
LOCK_RETRY_S = 0.0005
#: How long a request holding the writers' gate waits for the lock without yielding
#: the loop (see :func:`begin_immediate`).
URGENT_BLOCKING_S = 0.01


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


def begin_immediate(
    dbapi_connection: sqlite3.Connection,
    deadline_s: float,
    gate: WriterGate | None = None,
    *,
    urgent: bool = False,
) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock without blocking
    the event loop (must run inside SQLAlchemy's greenlet, as engine events do).

    With a ``gate`` (a database file other processes may write too), an ``urgent``
    writer (a web request) that finds the lock taken holds the gate until it has the
    lock, and any other writer first waits, up to the gate's ``yield_s``, while a
    request of any process holds it (:mod:`ils.db.writer_gate`).

    Raises:
        sqlite3.OperationalError: the lock stayed taken for ``deadline_s`` seconds,
            or any other error of the statement.
    """
    now = time.monotonic()
    give_up = now + deadline_s
    if gate is not None and not urgent:
        stop_yielding = now + gate.yield_s
        while gate.requests_waiting() and time.monotonic() < stop_yielding:
            await_only(asyncio.sleep(LOCK_RETRY_S))
    holding = False
    blocking_until = 0.0
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
            if urgent and gate is not None and not holding:
                holding = gate.hold_for_request()
                blocking_until = time.monotonic() + URGENT_BLOCKING_S
            if holding and time.monotonic() < blocking_until:
                # No other process starts a write now, so the lock comes free when the
                # transaction in progress ends, within milliseconds; a turn of a busy
                # loop takes tens, and this request holds the process's write turn
                # meanwhile, so every write request queued behind it waits too.
                time.sleep(LOCK_RETRY_S)
            else:
                await_only(asyncio.sleep(LOCK_RETRY_S))
    finally:
        if holding and gate is not None:
            gate.release_request()
