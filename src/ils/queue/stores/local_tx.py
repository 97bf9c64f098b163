"""How the local store runs a transaction: a plain function on a sync ``Connection``.

Every transaction of the store is written once, as synchronous SQLAlchemy code, and
run one of two ways:

* PostgreSQL (and in-memory SQLite): on the async engine the store was given, through
  ``AsyncConnection.run_sync``.
* A SQLite file: on a private synchronous ``sqlite3`` engine, in dedicated threads,
  so a whole transaction costs one hop between the event loop and a thread. Through
  aiosqlite each statement costs four or five such hops (cursor, execute, fetch, close),
  which made a fetch plus a complete about ten times slower. The private engine opens
  the same file with the settings of ``ils.database.create_engine`` (WAL, a busy
  timeout, foreign keys, ``BEGIN IMMEDIATE`` for writes), so it serializes with the
  other processes and engines on that file as they do (both use
  ``configure_sqlite``). Read-only transactions use a plain ``BEGIN`` instead: in WAL
  mode a reader needs no lock at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ils.database import READ_ONLY_OPTION, SQLITE_BUSY_TIMEOUT_S, WriteTurn, configure_sqlite

T = TypeVar("T")

#: SQLite's own wait for the write lock on the store's connections (then we retry).
SHORT_BUSY_TIMEOUT_MS = 5
#: Pause between our tries for the write lock.
BUSY_RETRY_S = 0.0005


class TxRunner(Protocol):
    """Runs ``body(connection)`` in one transaction: committed, or rolled back on error.

    ``readonly`` promises the body writes nothing: on SQLite it then starts with a
    plain ``BEGIN``, which in WAL mode neither waits for nor holds up any writer, so
    idle workers polling for jobs do not compete with producers for the write lock.
    """

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T: ...

    async def close(self) -> None: ...


class AsyncEngineRunner:
    """Transactions on the given async engine (greenlet bridge of ``run_sync``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(body)

    async def close(self) -> None:
        """Nothing of its own to release: the engine belongs to the caller."""


class SQLiteThreadRunner:
    """Transactions on a private ``sqlite3`` engine, in two threads: writer and reader.

    Writes run one at a time in the writer thread, so transactions of this process
    never wait for each other inside SQLite's busy handler (which sleeps in steps of
    milliseconds); only other processes' writes can make them wait there. Read-only
    transactions run in the reader thread on a connection of their own, so a health
    check or an idle worker's poll never queues behind writes.
    """

    def __init__(self, url: URL, write_turn: WriteTurn | None = None) -> None:
        self._engine = sqlite_sync_engine(url, connections=2)
        # Shared with the app's own write transactions on the same file (see
        # ``JobSystem.write_turn``): writers of one process then queue in order here
        # instead of racing in SQLite's busy handler, which is unfair and sleeps up to
        # 100 ms a try, so under load one writer could starve for seconds.
        self._write_turn = write_turn or WriteTurn()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ils-local-write")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ils-local-read")

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T:
        loop = asyncio.get_running_loop()
        if readonly:
            return await loop.run_in_executor(self._reader, self._transaction, body, True)
        async with self._write_turn():
            return await loop.run_in_executor(self._writer, self._transaction, body, False)

    def _transaction(self, body: Callable[[Connection], T], readonly: bool) -> T:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            with self._engine.connect() as conn:
                conn.info[READ_ONLY_OPTION] = readonly
                try:
                    transaction = conn.begin()
                except OperationalError as exc:
                    if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                        raise
                    # Another process holds the write lock: ask again very soon. SQLite's
                    # own busy handler backs off to 100 ms sleeps, and a worker process
                    # that writes often can then keep a producer waiting for long.
                    time.sleep(BUSY_RETRY_S)
                    continue
                with transaction:
                    return body(conn)

    async def close(self) -> None:
        """Let queued transactions finish, then stop the threads and close the file."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        for thread in (self._reader, self._writer):
            thread.shutdown(wait=True)
        self._engine.dispose()


def runner_for(engine: AsyncEngine, write_turn: WriteTurn | None = None) -> TxRunner:
    """The fastest runner that sees the same database as ``engine``."""
    url = engine.url
    database = url.database or ""
    in_file = database not in ("", ":memory:") and not database.startswith("file:")
    if engine.dialect.name == "sqlite" and in_file:
        return SQLiteThreadRunner(url, write_turn)
    return AsyncEngineRunner(engine)


def sqlite_sync_engine(url: URL, connections: int = 1) -> Engine:
    """A synchronous engine on the SQLite file of ``url`` (any SQLite driver name).

    A connection may move between threads (never used by two at once: the pool hands
    it to one caller at a time), hence ``check_same_thread=False``.
    """
    engine = create_engine(
        url.set(drivername="sqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=connections,
        max_overflow=0,
    )

    configure_sqlite(engine)

    @event.listens_for(engine, "connect")
    def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        # After configure_sqlite's listener: BEGIN IMMEDIATE gives up after a few ms and
        # ``SQLiteThreadRunner._transaction`` retries at a fine step instead.
        dbapi_connection.execute(f"PRAGMA busy_timeout={SHORT_BUSY_TIMEOUT_MS}")

    return engine
