"""The scheduler loop of a process that works the ``scheduled`` queue.

Every ``ILS_SCHEDULES__POLL_S`` it:

* every ``builtins_sync_s``, brings the built-in schedules in line with the active
  companies (:mod:`~ils.workers.scheduled.builtins`);
* with Redis in use, keeps BullMQ's job schedulers in step with the schedules table
  (BullMQ then makes the ticks);
* otherwise claims the due schedules (:meth:`ScheduleStore.claim`) and adds their
  ticks, each claim and its tick in one transaction.

Any number of processes may run it: claims are compare-and-set, BullMQ scheduler
upserts are idempotent, and a due time's jobs have fixed ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from ils.clock import utc_now
from ils.jobs.job_types import RunSchedule
from ils.jobs.model import JobOptions
from ils.jobs.schedules.store import TICK_JOB, TICK_QUEUE, ScheduleStore
from ils.jobs.worker_context import WorkerContext
from ils.workers.scheduled.builtins import sync_builtins


class ScheduleLoop:
    """Claims due schedules and keeps schedule definitions where they are needed."""

    def __init__(self, context: WorkerContext, store: ScheduleStore) -> None:
        self.context = context
        self.store = store
        self.settings = context.settings.schedules
        self.db = context.db
        self._logger = logging.getLogger(__name__)
        self._synced_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; a failed round is logged and tried again next poll."""
        while not stop.is_set():
            try:
                await self.round()
            except Exception:
                self._logger.exception("scheduler round failed")
            # Not wait_for, which on Python 3.11 loses a cancel that comes with the stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await stop.wait()

    async def round(self) -> int:
        """One pass: sync when due, then claim (local mode). How many ticks were added."""
        now = utc_now(self.context.clock)
        if self._synced_at is None or (
            (now - self._synced_at).total_seconds() >= self.settings.builtins_sync_s
        ):
            try:
                await self.sync(now)
                self._synced_at = now
            except IntegrityError:
                # Another process made the same schedule at the same moment: its
                # version stands; this process syncs again next round.
                self._logger.debug("built-in schedules synced by another process")
        if self.context.schedulers.in_redis:
            return 0
        return await self.claim_due(now)

    async def sync(self, now: datetime) -> None:
        """The built-in schedules, then (Redis mode) BullMQ's schedulers."""
        async with self.db.write() as session:
            changed = await sync_builtins(session, self.store, now)
        if changed:
            self._logger.info("built-in schedules: %d added, changed or removed", changed)
        if self.context.schedulers.in_redis:
            async with self.db.read() as session:
                schedules = await self.store.list(session, every_company=True)
            await self.context.schedulers.sync(schedules)

    async def claim_due(self, now: datetime) -> int:
        """Claim each due schedule and add its tick, one transaction per schedule."""
        added = 0
        async with self.db.read() as session:
            due_ids = [row.id for row in await self.store.due(session, now)]
        for schedule_id in due_ids:
            async with self.db.write() as session:
                row = await self.store.row(session, schedule_id)
                if row is None:
                    continue
                due = await self.store.claim(session, row, now)
                if due is None:
                    continue  # another process took it
                stamp = int(due.timestamp() * 1000)
                await self.context.sink.enqueue(
                    TICK_QUEUE,
                    TICK_JOB,
                    RunSchedule(schedule_id=schedule_id),
                    JobOptions(
                        priority=1,
                        job_id=f"tick-{schedule_id}-{stamp}",
                        company_id=row.company_id,
                    ),
                    session=session,
                )
                added += 1
        return added
