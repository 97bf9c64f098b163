"""Every transaction of ILS outside a web request, run one way on SQLite and PostgreSQL.

Two shapes, one class (:class:`Transactions`):

* ``read()`` / ``write()``: an ``AsyncSession`` for ORM code (workers, live streams);
* ``run(body, readonly=...)``: a plain function on a synchronous ``Connection``, run
  through ``AsyncConnection.run_sync`` (the local job store writes each of its
  transactions once, as synchronous SQLAlchemy Core).

On SQLite both go through the app's async engine and its inline driver
(:mod:`ils.db.sqlite_inline`): statements run on the event loop without thread hops,
and the one wait, for another process's write lock, is awaited with a short retry
(``begin_immediate``), the single retry policy of the app. A read begins deferred: in
WAL mode it neither takes nor waits for the write lock, so an idle worker's poll never
delays an enqueue. Every write of the process first takes its :class:`WriteTurn`, so
writers queue in order instead of racing in SQLite's busy handler. On PostgreSQL
both are plain transactions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ils.db.engine import READ_ONLY_OPTION, URGENT_OPTION, session_factory

T = TypeVar("T")


class WriteTurn:
    """A turn for the SQLite writers of one process: requests first, re-entrant in a task.

    SQLite lets one writer in at a time; the others wait in its busy handler, which is
    unfair and sleeps up to 100 ms a try, so under load a writer can starve for
    seconds. Writers of one process (web requests, the local job store, the workers)
    take this turn first and queue instead.

    Two queues, each in order: a waiting web request (``urgent``) goes before waiting
    background writers (job claims, completions, logs), because a person waits for the
    request and nobody waits for the bookkeeping. Measured under ``bench/orders.py``
    with the workers in the server, requests waited up to 19 ms (p99) behind about four
    background writes an order. So that a stream of requests cannot starve the
    workers, a background writer is let in after ``urgent_in_a_row`` requests.

    A task that holds the turn passes straight through (a request that calls the job
    store inside its own transaction must not wait for itself).
    """

    def __init__(self, urgent_in_a_row: int = 8) -> None:
        self._urgent_in_a_row = urgent_in_a_row
        self._busy = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._background: collections.deque[asyncio.Future[None]] = collections.deque()
        self._urgent_run = 0
        self._held: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"ils_write_turn_{id(self)}", default=False
        )

    @contextlib.asynccontextmanager
    async def __call__(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held.get():
            yield
            return
        await self._acquire(urgent)
        token = self._held.set(True)
        try:
            yield
        finally:
            self._held.reset(token)
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._busy:
            self._busy = True
            return
        waiters = self._urgent if urgent else self._background
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.cancelled():
                # Still queued, unless a release already passed over it.
                with contextlib.suppress(ValueError):
                    waiters.remove(granted)
            else:
                self._release()  # handed the turn as the task was cancelled: pass it on
            raise

    def _release(self) -> None:
        """Hand the turn straight to the next waiter (it stays busy), or free it.

        A waiter whose task was cancelled has a cancelled future until its task runs
        and leaves the queue; it is passed over.
        """
        while True:
            take_urgent = bool(self._urgent) and (
                not self._background or self._urgent_run < self._urgent_in_a_row
            )
            if take_urgent:
                self._urgent_run += 1
                granted = self._urgent.popleft()
            elif self._background:
                self._urgent_run = 0
                granted = self._background.popleft()
            else:
                self._urgent_run = 0
                self._busy = False
                return
            if not granted.cancelled():
                granted.set_result(None)
                return


class TxRunner(Protocol):
    """Runs ``body(connection)`` in one transaction: committed, or rolled back on error.

    ``readonly`` promises the body writes nothing: on SQLite it then starts with a
    plain ``BEGIN``, which in WAL mode neither waits for nor holds up any writer.
    """

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T: ...


class Transactions:
    """Short read and write transactions on ``engine`` (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, write_turn: WriteTurn | None = None) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.sqlite = engine.dialect.name == "sqlite"
        self._write_turn = write_turn if self.sqlite else None

    def _turn(self, *, urgent: bool = False) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_turn(urgent=urgent) if self._write_turn else contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads."""
        async with self.sessions() as session:
            if self.sqlite:
                await session.connection(execution_options={READ_ONLY_OPTION: True})
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction committed on exit (rolled back on error)."""
        async with self._turn(), self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def request(self, *, reading: bool) -> AsyncIterator[AsyncSession]:
        """A web request's transaction: committed on exit, rolled back on any error.

        ``reading`` (a GET, HEAD or OPTIONS): on SQLite the transaction starts deferred
        instead of taking the write lock (``BEGIN IMMEDIATE``) and skips the process's
        write turn, so reads never queue behind writers or the workers' claims; such
        requests must not write. Anything else queues for the write turn (shared with
        the local job store) instead of racing for the file lock in SQLite's busy
        handler, ahead of waiting background writers, and ahead of other processes'
        background writers too (``ils.db.writer_gate``). On other databases both are
        the same plain transaction.
        """
        turn = contextlib.nullcontext() if reading else self._turn(urgent=True)
        async with turn, self.sessions() as session:
            if self.sqlite:
                # Reads begin deferred; writes go before other processes' jobs.
                option = READ_ONLY_OPTION if reading else URGENT_OPTION
                await session.connection(execution_options={option: True})
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            # The request's one commit (``session.commit``, which tests count).
            await session.commit()

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T:
        """``body`` on a synchronous connection in one transaction (see :class:`TxRunner`)."""
        if readonly and self.sqlite:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**{READ_ONLY_OPTION: True})
                async with conn.begin():
                    return await conn.run_sync(body)
        async with self._turn(), self.engine.begin() as conn:
            return await conn.run_sync(body)
