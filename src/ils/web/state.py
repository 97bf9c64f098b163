"""What the app's lifespan builds once and every request reaches through ``app.state``.

One object instead of loose attributes, so a dependency gets everything typed from a
single place and nothing lives in a module global (docs/design.md, rule 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ils.clock import Clock
from ils.db.transactions import Transactions
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.storage.backends import Storages
from ils.web.live import NotificationHub
from ils.web.security import Passwords, SessionManager
from ils.web.slots import RequestSlots


@dataclass(frozen=True, slots=True)
class WebState:
    """The process's long-lived objects, made by ``create_app``'s lifespan.

    Attributes:
        settings: The settings the app was created with.
        system: The job system (stores, helpers, outbox).
        transactions: The request transactions on ``system.engine`` with the process's
            write turn (``get_session``); ``sessions`` is its session factory.
        passwords: argon2id hashing, off the event loop.
        auth: Signed cookies and server-side sessions.
        clock: The injected clock (session expiry).
        workers: Whether this process runs workers too.
        notifications: Wakes this process's live notification streams.
        storage: Documents and uploaded files (one S3 client for all requests).
        numbering: PostgreSQL's engine for order numbers (``None`` on SQLite).
        slots: Expensive requests running per session (``ils.web.limits``).
    """

    settings: Settings
    system: JobSystem
    transactions: Transactions
    passwords: Passwords
    auth: SessionManager
    clock: Clock
    workers: bool
    notifications: NotificationHub
    storage: Storages
    numbering: AsyncEngine | None = None
    slots: RequestSlots = field(default_factory=RequestSlots)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the app database outside a request (tests, start-up)."""
        return self.transactions.sessions
