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
:mod:`ils.queue.schedules`, with the time rules of :mod:`ils.queue.cron`.
"""

from __future__ import annotations

from typing import Final

from ils.queue.jobtypes_scheduled import CleanupExpiredData, RunSchedule
from ils.queue.registry import HandlerRegistry
from ils.queue.schedules import ScheduleStore
from ils.queue.system import JobSystem
from ils.workers.scheduled.handlers import ScheduledWorker
from ils.workers.scheduled.loop import ScheduleLoop

QUEUE: Final = "scheduled"

__all__ = ["QUEUE", "ScheduleLoop", "ScheduledWorker", "register"]


def register(registry: HandlerRegistry, system: JobSystem) -> ScheduledWorker:
    """Register the two handlers, and the scheduler loop for processes that work the
    ``scheduled`` queue."""
    store = ScheduleStore()
    worker = ScheduledWorker(system, store)
    registry.register(RunSchedule, worker.run_schedule)
    registry.register(CleanupExpiredData, worker.cleanup)
    registry.serve_with(QUEUE, ScheduleLoop(system, store).run)
    return worker
