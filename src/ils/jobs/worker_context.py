"""What a worker gets of its process's job system: a typed context, not the system.

Workers (``ils.workers.<queue>``) are built from a :class:`WorkerContext`, so what
they may touch is named here: settings and clock, the helpers and the producer to
queue follow-up jobs, short database transactions, the event bus, the schedulers'
Redis side, and a hook to release their own resources when the process stops.
They cannot reach the stores, the gate or the admin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ils.clock import Clock
from ils.db.transactions import Transactions
from ils.jobs.catalogue import Catalogue
from ils.jobs.events import EventBus
from ils.jobs.helpers import JobHelpers
from ils.jobs.job_types import JobTypes
from ils.jobs.schedules.sync import JobSchedulers
from ils.jobs.sink import JobSink
from ils.settings import Settings

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class WorkerContext:
    """The parts of the job system a worker uses (see the module docstring)."""

    settings: Settings
    clock: Clock
    catalogue: Catalogue
    job_types: JobTypes
    #: The ``queue_...`` functions, for follow-up jobs of jobs.md.
    helpers: JobHelpers
    #: Enqueues a job already validated (a schedule's stored payload).
    sink: JobSink
    #: Short transactions on the app database, with the process's write turn.
    db: Transactions
    #: Signals to other processes (live notification and chat streams).
    events: EventBus
    schedulers: JobSchedulers
    #: Registers a closer run when the process's job system closes (newest first).
    on_close: Callable[[Closer], None]
