"""The ``scheduled`` queue's handlers: a schedule's tick, and the nightly clean-up.

``run-schedule`` (the tick) takes the schedule's newest due time at or before now and
enqueues each of its jobs with the id ``sched-<schedule>-<due ms>[-<n>]`` after
recording the due time on the schedule's row (compare-and-set): a due time produces
its jobs once, however many ticks arrive for it (two processes, a retried tick, a
BullMQ iteration and a local claim after a Redis outage). The catch-up
policy is applied here, the same in both modes: a tick later than
``ILS_SCHEDULES__GRACE_S`` after its due time runs under ``once`` and is dropped under
``skip``. "Run now" (``manual``) runs at once with ids of its own.

``cleanup-expired-data`` deletes what has outlived its retention: read notifications
after ``ILS_SCHEDULES__NOTIFICATION_DAYS``, any notification after a year, expired sign-in
sessions, and files in the documents and uploads directories that no record points
at (older than a day, so a file being written now is never taken).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import utc_now
from ils.domain.companies import UserSession, zone_named
from ils.domain.content import Document, Notification, UploadedFile
from ils.errors import PermanentJobError
from ils.jobs.job_types import CleanupExpiredData, RunSchedule
from ils.jobs.model import JobOptions
from ils.jobs.registry import JobContext
from ils.jobs.schedules.store import Schedule, ScheduleStore
from ils.jobs.worker_context import WorkerContext

#: A notification anyone has not read is still kept this long.
UNREAD_NOTIFICATION_DAYS: Final = 365
#: A file must be this old before an unreferenced one is deleted.
ORPHAN_AGE_S: Final = 86_400
DATE_PLACEHOLDER: Final = "{date}"


class ScheduleGoneError(PermanentJobError):
    """The tick names a schedule that no longer exists."""


def fill(data: dict[str, Any], run_date: date) -> dict[str, Any]:
    """``data`` with ``"{date}"`` values replaced by the run's local date."""
    return {
        key: run_date.isoformat() if value == DATE_PLACEHOLDER else value
        for key, value in data.items()
    }


@dataclass(frozen=True, slots=True)
class Run:
    """What a tick decided: the due time it ran for (``None``: manual), or why not."""

    due: datetime | None
    skipped: str | None = None


class ScheduledWorker:
    """Handlers of the ``scheduled`` queue for one process."""

    def __init__(self, context: WorkerContext, store: ScheduleStore) -> None:
        self.context = context
        self.store = store
        self.db = context.db

    # -- ticks --------------------------------------------------------------------------

    async def run_schedule(self, payload: RunSchedule, ctx: JobContext) -> dict[str, Any]:
        """Enqueue the schedule's jobs for its newest due time (once)."""
        now = utc_now(self.context.clock)
        async with self.db.write() as session:
            schedule = await self.store.get(session, payload.schedule_id)
            if schedule is None:
                raise ScheduleGoneError(f"schedule {payload.schedule_id} does not exist")
            run = self.decide(schedule, now, manual=payload.manual)
            due = run.due
            if (
                run.skipped is None
                and due is not None
                and not await self.store.mark_run(session, schedule.id, due)
            ):
                run = Run(due, f"the run of {due.isoformat()} already ran")
            if run.skipped is not None:
                await ctx.log(f"schedule {schedule.id}: {run.skipped}")
                return {"scheduleId": schedule.id, "skipped": run.skipped}
            ids = await self._enqueue(session, schedule, run, now)
        await ctx.log(f"schedule {schedule.id}: queued {len(ids)} jobs")
        return {
            "scheduleId": schedule.id,
            "due": run.due.isoformat() if run.due else None,
            "jobs": ids,
        }

    def decide(self, schedule: Schedule, now: datetime, *, manual: bool) -> Run:
        """Which due time a tick at ``now`` runs, or why it runs nothing."""
        if manual:
            return Run(None)
        if schedule.paused:
            return Run(None, "paused")
        due = schedule.latest_due(now)
        if due is None:
            return Run(None, "not due yet")
        late = (now - due).total_seconds() > self.context.settings.schedules.grace_s
        if late and schedule.catch_up == "skip":
            return Run(due, f"missed run of {due.isoformat()} skipped (catch-up: skip)")
        return Run(due)

    async def _enqueue(
        self, session: AsyncSession, schedule: Schedule, run: Run, now: datetime
    ) -> list[str]:
        moment = run.due or now
        local_date = moment.astimezone(zone_named(schedule.spec.time_zone)).date()
        stamp = int(moment.timestamp() * 1000)
        base = f"sched-{schedule.id}-{'manual-' if run.due is None else ''}{stamp}"
        # A schedule may fan out to many jobs: those of one queue go in one batch (one
        # Redis round trip, one insert); the ids come back in the schedule's order.
        batches: dict[str, list[tuple[int, str, BaseModel, JobOptions]]] = {}
        for n, job in enumerate(schedule.jobs):
            job_type = self.context.job_types.get(job.queue, job.name)
            payload = job_type.model.model_validate(fill(job.data, local_date))
            job_id = base if len(schedule.jobs) == 1 else f"{base}-{n}"
            options = job_type.options_for(payload, job_id=job_id, company_id=schedule.company_id)
            batches.setdefault(job.queue, []).append((n, job.name, payload, options))
        ids: dict[int, str] = {}
        for queue, batch in batches.items():
            refs = await self.context.sink.enqueue_many(
                queue, [(name, payload, options) for _, name, payload, options in batch],
                session=session,
            )  # fmt: skip
            ids.update((n, ref.job_id) for (n, *_), ref in zip(batch, refs, strict=True))
        return [ids[n] for n in sorted(ids)]

    # -- clean-up -----------------------------------------------------------------------

    async def cleanup(self, payload: CleanupExpiredData, ctx: JobContext) -> dict[str, Any]:
        """Delete expired rows, then files no record points at."""
        settings = self.context.settings
        days = payload.older_than_days or settings.schedules.notification_days
        now = utc_now(self.context.clock)
        async with self.db.write() as session:
            read_before = now - timedelta(days=days)
            any_before = now - timedelta(days=max(days, UNREAD_NOTIFICATION_DAYS))
            notes = await session.execute(
                delete(Notification).where(
                    or_(
                        (Notification.read_at.is_not(None))
                        & (Notification.created_at < read_before),
                        Notification.created_at < any_before,
                    )
                )
            )
            sessions = await session.execute(
                delete(UserSession).where(UserSession.expires_at < now)
            )
            documents = set(await session.scalars(select(Document.path)))
            uploads = set(await session.scalars(select(UploadedFile.path)))
        cutoff = time.time() - ORPHAN_AGE_S
        files = await asyncio.to_thread(_delete_orphans, settings.documents_dir, documents, cutoff)
        files += await asyncio.to_thread(_delete_orphans, settings.uploads_dir, uploads, cutoff)
        result = {
            "notifications": int(getattr(notes, "rowcount", 0) or 0),
            "sessions": int(getattr(sessions, "rowcount", 0) or 0),
            "files": files,
        }
        await ctx.log(f"clean-up: {result}")
        return result


def _delete_orphans(root: Path, referenced: set[str], older_than: float) -> int:
    """Delete files under ``root`` whose storage key no record holds (older ones only)."""
    if not root.exists():
        return 0
    deleted = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        key = path.relative_to(root).as_posix()
        if key in referenced or path.stat().st_mtime > older_than:
            continue
        os.unlink(path)
        deleted += 1
    return deleted
