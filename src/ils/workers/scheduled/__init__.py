"""The scheduled worker: work on a calendar, in each company's time zone.

* ``builtins``: the schedules every active company gets (daily briefing at 08:00
  local, nightly anomaly detection, weekly demand forecast) and the platform's
  nightly clean-up, kept in line with the companies.
* ``loop``: the scheduler loop of every process that works the ``scheduled`` queue
  (claims due schedules in local mode; keeps BullMQ's job schedulers in step in
  Redis mode).
* ``handlers``: ``run-schedule`` (a schedule's tick: its jobs, once per due time,
  under its catch-up policy) and ``cleanup-expired-data``.

Schedules themselves (table, store, claims) are the job system's:
:mod:`ils.jobs.schedules.store`, with the time rules of :mod:`ils.jobs.schedules.cron`.
"""

from __future__ import annotations

from typing import Final

from ils.jobs.payloads.scheduled import CleanupExpiredData, RunSchedule
from ils.jobs.registry import HandlerRegistry
from ils.jobs.schedules.store import ScheduleStore
from ils.jobs.worker_context import WorkerContext
from ils.workers.scheduled.handlers import ScheduledWorker
from ils.workers.scheduled.loop import ScheduleLoop

QUEUE: Final = "scheduled"

__all__ = ["QUEUE", "ScheduleLoop", "ScheduledWorker", "register"]


def register(registry: HandlerRegistry, context: WorkerContext) -> ScheduledWorker:
    """Register the two handlers, and the scheduler loop for processes that work the
    ``scheduled`` queue."""
    store = ScheduleStore()
    worker = ScheduledWorker(context, store)
    registry.register(RunSchedule, worker.run_schedule)
    registry.register(CleanupExpiredData, worker.cleanup)
    registry.serve_with(QUEUE, ScheduleLoop(context, store).run)
    return worker
