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
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ils.db.engine import READ_ONLY_OPTION, session_factory

T = TypeVar("T")


#: Requests a waiting background writer lets pass before it takes the turn.
REQUESTS_FIRST = 2


class WriteTurn:
    """The turn for the SQLite writers of one process: requests first, re-entrant.

    SQLite lets one writer in at a time; the others wait in its busy handler, which is
    unfair and sleeps up to 100 ms a try, so under load a writer can starve for
    seconds. Writers of one process (web requests, the local job store, the workers)
    take this turn first and queue in order. A task that holds the turn passes straight
    through (a request that calls the job store inside its own transaction must not
    wait for itself).

    Two lines: a web request waits only for the writer in the turn and the requests
    ahead of it, not for the workers' writes queued before it (:meth:`background`);
    background writers take the turn whenever no request waits. A user is waiting on
    the request; nobody waits on a job's bookkeeping by the millisecond, and with
    every worker in the server process (the embedded default) there are ten or more
    of those writes for each order placed.

    The turn is handed to the next waiter, not freed for whoever asks first: letting
    running tasks take a free turn while a woken waiter had not run yet was tried, and
    put the paced p99 of ``bench/orders.py`` from 38-45 ms to 54-69 ms. So a writer
    must never hold the turn across a wait it could do before (the pool: see
    :meth:`Transactions._connection_then_turn`).
    """

    def __init__(self) -> None:
        self._taken = False
        #: Requests let in since a background writer began to wait.
        self._passed = 0
        self._waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (
            collections.deque(),
            collections.deque(),
        )
        #: The task in the turn. Not a context variable: a task created inside the
        #: turn would inherit it and write beside its creator.
        self._holder: asyncio.Task[Any] | None = None

    def __call__(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The turn for a foreground writer (a web request)."""
        return self._turn(0)

    def background(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The turn for a background writer (job store, workers): after any request."""
        return self._turn(1)

    @contextlib.asynccontextmanager
    async def _turn(self, line: int) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            yield
            return
        await self._acquire(line)
        self._holder = task
        try:
            yield
        finally:
            self._holder = None
            self._release()

    async def _acquire(self, line: int) -> None:
        if not self._taken and not any(self._waiting):
            self._taken = True
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[line].append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed the turn just as this task was cancelled: pass it on.
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiting[line].remove(waiter)
            raise

    def _release(self) -> None:
        """Hand the turn to the next waiter (see :meth:`_next`), or free it."""
        while (waiter := self._next()) is not None:
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self._taken = False

    def _next(self) -> asyncio.Future[None] | None:
        """The first request, unless background writers have let ``REQUESTS_FIRST``
        requests pass already: then the first background writer. Under a flood of
        requests jobs still move, at one write in ``REQUESTS_FIRST + 1``."""
        requests, background = self._waiting
        if background and (not requests or self._passed >= REQUESTS_FIRST):
            self._passed = 0
            return background.popleft()
        if requests:
            if background:
                self._passed += 1
            return requests.popleft()
        return None


WriteTurnFactory = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


class TxRunner(Protocol):
    """Runs ``body(connection)`` in one transaction: committed, or rolled back on error.

    ``readonly`` promises the body writes nothing: on SQLite it then starts with a
    plain ``BEGIN``, which in WAL mode neither waits for nor holds up any writer.
    """

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T: ...


class Transactions:
    """Short read and write transactions on ``engine`` (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, write_turn: WriteTurnFactory | None = None) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.sqlite = engine.dialect.name == "sqlite"
        self._write_turn = write_turn if self.sqlite else None

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_turn() if self._write_turn else contextlib.nullcontext()

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
        async with (
            self._connection_then_turn() as bind,
            self.sessions(bind=bind) as session,
            session.begin(),
        ):
            yield session

    @contextlib.asynccontextmanager
    async def _connection_then_turn(self) -> AsyncIterator[AsyncConnection | AsyncEngine]:
        """On SQLite a pooled connection first, then the write turn (the transaction
        begins on the connection after both): a writer never holds the turn while it
        waits for the pool. The other order deadlocked ``bench/users.py`` with 1,000
        users: a job in the turn waited for a connection, and the pool's connections
        were with requests whose writes waited for the turn. Elsewhere the engine."""
        if not self.sqlite:
            yield self.engine
            return
        async with self.engine.connect() as conn, self._turn():
            yield conn

    @contextlib.asynccontextmanager
    async def request(self, *, reading: bool) -> AsyncIterator[AsyncSession]:
        """A web request's transaction: committed on exit, rolled back on any error.

        ``reading`` (a GET, HEAD or OPTIONS): on SQLite the transaction starts deferred
        instead of taking the write lock (``BEGIN IMMEDIATE``) and skips the process's
        write turn, so reads never queue behind writers or the workers' claims; such
        requests must not write. Anything else queues for the write turn (shared with
        the local job store) instead of racing for the file lock in SQLite's busy
        handler. On other databases both are the same plain transaction.
        """
        writer = contextlib.nullcontext(self.engine) if reading else self._connection_then_turn()
        async with writer as bind, self.sessions(bind=bind) as session:
            if reading and self.sqlite:
                await session.connection(execution_options={READ_ONLY_OPTION: True})
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
        async with self._connection_then_turn() as bind:
            if isinstance(bind, AsyncEngine):
                async with bind.begin() as conn:
                    return await conn.run_sync(body)
            async with bind.begin():
                return await bind.run_sync(body)
