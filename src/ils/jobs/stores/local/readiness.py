"""When each queue of the local store next has a job, read for every queue at once.

Why: an idle worker polls the local store for jobs other processes add (the web
process's jobs in the embedded default, fail-over jobs in Redis mode). Each queue's
waiter used to read its own queue every poll, three statements in a transaction of
its own: six queues, sixty transactions a second, 6-8 % of a core for a worker with
nothing to do (``ils worker`` in Redis mode, idle, measured with ``/proc``). Now the
waiters share one snapshot of every queue they wait on, read in one statement and
reused for half a poll interval, so a process polls the store at most twice a poll
interval whatever the number of queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Connection, Select, exists, func, select

from ils.jobs.stores.local.sql import DELAYED, JOBS, QUEUES, WAITING

#: When each queue's next job is due (epoch ms; 0 when one waits now), ``None`` when
#: the queue is paused or has nothing pending.
DueTimes = dict[str, int | None]


def readiness_query(queues: Sequence[str]) -> Select[tuple[object, ...]]:
    """One row, three columns per queue: paused, a job waiting, the next delayed due
    time. Indexed lookups only (``ix_ils_jobs_due``), however long the queues are."""
    columns = []
    for queue in queues:
        columns += [
            select(QUEUES.c.paused).where(QUEUES.c.queue == queue).scalar_subquery(),
            exists().where(JOBS.c.queue == queue, JOBS.c.state == WAITING),
            select(func.min(JOBS.c.run_at_ms))
            .where(JOBS.c.queue == queue, JOBS.c.state == DELAYED)
            .scalar_subquery(),
        ]
    return select(*columns)


def read_due_times(
    conn: Connection, queues: Sequence[str], query: Select[tuple[object, ...]]
) -> DueTimes:
    """Run ``query`` (:func:`readiness_query` of ``queues``) and say when each is due."""
    row = conn.execute(query).one()
    due: DueTimes = {}
    for index, queue in enumerate(queues):
        paused, waiting, next_delayed = row[3 * index : 3 * index + 3]
        if paused:
            due[queue] = None
        elif waiting:
            due[queue] = 0
        else:
            due[queue] = None if next_delayed is None else int(next_delayed)
    return due


class ReadinessBoard:
    """The due times of every queue this process waits on, shared by its waiters.

    A snapshot is read for all the queues asked about so far and reused for
    ``fresh_s``; concurrent askers share one read. A queue found ready is dropped from
    the snapshot when it is answered, so the next ask reads again: a stale "ready"
    costs one empty fetch, never a spin.

    Args:
        read: Reads the due times of the given queues (one transaction).
        fresh_s: How long a snapshot answers without a new read.
    """

    def __init__(
        self, read: Callable[[tuple[str, ...]], Awaitable[DueTimes]], fresh_s: float
    ) -> None:
        self._read = read
        self._fresh_s = fresh_s
        self._asked: set[str] = set()
        self._due: DueTimes = {}
        self._read_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None

    async def due_at_ms(self, queue: str, now_ms: int) -> int | None:
        """When ``queue``'s next job is due (epoch ms, at most ``now_ms`` when one is
        claimable now); ``None`` when it is paused or has nothing pending."""
        self._asked.add(queue)
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        # A read begun after the ask answers it however long it took (a slow read must
        # not send the asker round again); an older one only while fresh.
        while queue not in self._due or (
            self._read_at < asked_at and loop.time() - self._read_at >= self._fresh_s
        ):
            await self._refresh()
        due = self._due[queue]
        if due is not None and due <= now_ms:
            del self._due[queue]
        return due

    def forget(self, queue: str) -> None:
        """Drop what the snapshot says of ``queue`` (this process changed it): the next
        ask reads again."""
        self._due.pop(queue, None)

    async def _refresh(self) -> None:
        # A finished read whose callback has not run yet must not be awaited again:
        # awaiting a done future does not yield, so an asker it did not answer would
        # spin on it for ever (the loop never gets to run ``_done``).
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_all())
            self._reading.add_done_callback(self._done)
        await asyncio.shield(self._reading)

    async def _read_all(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._due = await self._read(tuple(sorted(self._asked)))
        self._read_at = started

    def _done(self, reading: asyncio.Future[None]) -> None:
        """Let the next ask read again; a failure nobody awaited is not left unread."""
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()
