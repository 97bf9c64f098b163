"""The app database: declarative base and engine factory (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.orm import DeclarativeBase

from ils.db.sqlite_inline import DRIVER as INLINE_DRIVER
from ils.db.sqlite_inline import INLINE_BUSY_TIMEOUT_MS, begin_immediate
from ils.db.writer_gate import WriterGate
from ils.files import create_private

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Execution option (or connection ``info`` key) marking a read-only transaction:
# SQLite then begins deferred.
READ_ONLY_OPTION = "ils_read_only"
# Execution option marking a web request's write transaction: on SQLite it goes before
# other processes' background writers (``ils.db.writer_gate``).
URGENT_OPTION = "ils_urgent"
# Seconds a SQLite writer waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_S = 30
# Connections kept open and opened beyond them at busy moments, per process, by default.
SQLITE_POOL = (20, 20)
POSTGRES_POOL = (5, 10)


class Base(DeclarativeBase):
    """Declarative base of every table, so Alembic sees one metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def configure_sqlite(engine: Engine, gate: WriterGate | None = None) -> None:
    """Settings every SQLite connection of ILS gets (the inline driver's engine).

    WAL (readers never block the writer), foreign keys, and ``BEGIN IMMEDIATE``
    transactions, so a read-then-write such as claiming a job takes the write lock up
    front and cannot deadlock on a lock upgrade. SQLite's own busy wait is kept to a
    millisecond (it would block the event loop); :func:`begin_immediate` awaits the
    write lock instead, with a short retry, for up to ``SQLITE_BUSY_TIMEOUT_S``. A
    transaction marked read-only (``READ_ONLY_OPTION`` as an execution option or in the
    connection's ``info``) begins deferred instead: under WAL it neither waits for nor
    holds up a writer, so a poll never delays an enqueue. With a ``gate`` (a database
    file), a transaction marked ``URGENT_OPTION`` (a web request) goes before the
    background writers of every process (:mod:`ils.db.writer_gate`).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.info.get(READ_ONLY_OPTION) or conn.get_execution_options().get(
            READ_ONLY_OPTION
        )
        if read_only:
            conn.exec_driver_sql("BEGIN")
        else:
            urgent = bool(conn.get_execution_options().get(URGENT_OPTION))
            dbapi_connection = conn.connection.dbapi_connection
            begin_immediate(dbapi_connection, SQLITE_BUSY_TIMEOUT_S, gate, urgent=urgent)  # type: ignore[arg-type]


def create_engine(
    url: str, *, echo: bool = False, pool_size: int | None = None, max_overflow: int | None = None
) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets :func:`configure_sqlite`.

    SQLite runs on our inline driver whatever driver the URL names (``sqlite://``, or
    ``sqlite+aiosqlite://`` in older settings): see :mod:`ils.db.sqlite_inline` for why.

    ``pool_size`` connections are kept open, ``max_overflow`` more are opened while
    they are all busy and closed when returned (``None``: the backend's default,
    :data:`SQLITE_POOL` or :data:`POSTGRES_POOL`). A SQLite file keeps more than
    SQLAlchemy's 5 because a connection opened under load costs the event loop: the
    open, the schema parsed on its first statement, and a cold page cache, for a
    connection closed again a moment later (1,100 a minute under ``bench/users.py
    --users 1000``, half a second of CPU a minute in the first pragma alone).
    """
    if not is_sqlite(url):
        return create_async_engine(
            url, echo=echo, **_pool_arguments(POSTGRES_POOL, pool_size, max_overflow)
        )
    sqlite_url = make_url(url).set(drivername=f"sqlite+{INLINE_DRIVER}")
    database = sqlite_url.database
    if database and database != ":memory:" and "uri" not in sqlite_url.query:
        # SQLite would create the file 0644 under a 022 umask, and gives its -wal, -shm
        # and -journal files the database file's mode: made here first, all are 0600.
        create_private(Path(database))
        gate = WriterGate(Path(database))
        pool = _pool_arguments(SQLITE_POOL, pool_size, max_overflow)
    else:
        # Memory (no other process opens it), or a URI the caller manages: SQLAlchemy
        # picks the pool (one shared connection for memory).
        gate = None
        pool = {}
    engine = create_async_engine(sqlite_url, echo=echo, **pool)
    configure_sqlite(engine.sync_engine, gate)
    return engine


def _pool_arguments(
    defaults: tuple[int, int], pool_size: int | None, max_overflow: int | None
) -> dict[str, int]:
    """SQLAlchemy's pool arguments: those given, the backend's ``defaults`` for the rest."""
    size, overflow = defaults
    return {
        "pool_size": size if pool_size is None else pool_size,
        "max_overflow": overflow if max_overflow is None else max_overflow,
    }


def create_numbering_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """PostgreSQL: a second engine, with a small pool of its own, for order numbers.

    Order numbers are taken in short transactions of their own while the request's
    transaction is open (see :mod:`ils.domain.numbering`). Taking that connection
    from the request's pool could deadlock: with every connection held by a request
    waiting for a second one, none is ever returned. A number's transaction waits
    on nothing but one row lock held for one statement, so its own pool always
    drains. SQLite serializes writers anyway and gets ``None`` (numbers are counted
    in the request's transaction there).
    """
    if engine.dialect.name != "postgresql":
        return None
    return create_async_engine(engine.url, pool_size=5, max_overflow=10)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
