"""The local store working inside a caller's transaction (``LocalJobStore.in_session``).

An admin action from the API changes a job and writes its audit row: both must commit
together, or neither. On SQLite the request's transaction holds the database's only
write lock from its first statement, so the store's own connection could not write
until the request ended; PostgreSQL would commit the job change on its own. Running
the store's transactions as savepoints of the request's session solves both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ils.jobs.stores.local.store import LocalJobStore

T = TypeVar("T")


class SessionTransactions:
    """A ``TxRunner`` (see :mod:`ils.db.transactions`) on the session's connection: each body
    runs in a savepoint of the session's transaction, which commits or rolls back
    with the rest of the session's work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def run(self, body: Callable[[Connection], T], *, readonly: bool = False) -> T:
        async with self._session.begin_nested():
            connection = await self._session.connection()
            return await connection.run_sync(body)


class LocalInSession(LocalJobStore):
    """The local store with its transactions replaced by a session's.

    It shares the store's state (catalogue, clock, wake-up events) rather than
    opening connections of its own, so it has nothing to close. The store wakes this
    process's waiting workers right after each change; here that waits for the
    session's commit, when the change becomes visible to them.

    Made by ``LocalJobStore.in_session``; it replaces two internals of the store
    (``_runner``, ``_notify``), which is why it lives beside it (the contract is
    pinned by ``tests/jobs/test_job_admin.py``).
    """

    def __init__(self, store: LocalJobStore, session: AsyncSession) -> None:
        # Deliberately no LocalJobStore.__init__: the store's state is shared, only its
        # transactions are replaced.
        self.__dict__.update(store.__dict__)
        self._runner = SessionTransactions(session)
        self._store = store
        self._woken: set[str] = set()
        event.listen(session.sync_session, "after_commit", self._wake)
        event.listen(session.sync_session, "after_rollback", self._forget)

    def _notify(self, queue: str) -> None:
        self._woken.add(queue)

    def _wake(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint's release: nothing is visible to others yet
        woken, self._woken = self._woken, set()
        for queue in woken:
            self._store._notify(queue)

    def _forget(self, session: Session) -> None:
        if not session.in_nested_transaction():
            self._woken.clear()

    async def close(self) -> None:
        """The store it was made from owns the connections."""
