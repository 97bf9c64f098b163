"""Schedules: jobs that run on a calendar, kept in the app database.

A schedule is a cron expression or an interval in a time zone (see
:mod:`ils.jobs.schedules.cron` for the daylight-saving rules), an optional start and end, a
catch-up policy, and the jobs it enqueues. Each due time produces one ``run-schedule``
job on the ``scheduled`` queue (the tick); its handler enqueues the schedule's jobs.

Who produces the ticks:

* **local mode**: ``ScheduleLoop.claim_due`` (``workers/scheduled/loop.py``), called by
  every scheduler loop, moves a due schedule's ``next_run_at_ms`` forward with a
  compare-and-set and adds the tick
  in the same transaction. Of several processes polling at once exactly one wins a due
  time, so a schedule fires once per due time however many servers run; the tick's
  job id (``tick-<schedule>-<due ms>``) makes even a repeated add a no-op.
* **Redis mode**: BullMQ's job schedulers (kept in step with this table by
  ``stores.redis.schedulers``); BullMQ makes one delayed tick per due time.

Whatever made a tick, its handler records the due time it runs with a compare-and-set
on the schedule's row, so a due time runs once even when ticks for it come from both
stores (Redis down, then back). After downtime the newest missed due time fires once;
the tick's handler then applies the schedule's policy: ``once`` runs it (catch up
once), ``skip`` drops a run that is later than the grace period. Definitions live here
in both modes, so the management API, its audit trail and the next run times shown
do not depend on the mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import JSON, BigInteger, Boolean, Index, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base
from ils.jobs.schedules.cron import ScheduleSpec, latest_run_at_or_before, next_run, validate

CatchUp = Literal["once", "skip"]
#: The tick job of the ``scheduled`` queue.
TICK_QUEUE: Final = "scheduled"
TICK_JOB: Final = "run-schedule"
#: Schedule ids are job-payload identifiers (``scheduleId``).
ID_LENGTH: Final = 64


class ScheduleRow(Base):
    """One schedule. Times are epoch milliseconds; ``next_run_at_ms`` is what the local
    claimers compare-and-set (``None`` while paused or after the end),
    ``last_run_at_ms`` the due time whose jobs were last enqueued, what every tick
    compare-and-sets (:meth:`ScheduleStore.mark_run`)."""

    __tablename__ = "ils_schedules"
    __table_args__ = (
        Index("ix_ils_schedules_due", "paused", "next_run_at_ms"),
        Index("ix_ils_schedules_company", "company_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    company_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    #: ``briefing``, ``anomalies``, ``forecast``, ``cleanup`` for the built-in ones.
    builtin: Mapped[str | None] = mapped_column(String(32))
    cron: Mapped[str | None] = mapped_column(String(120))
    every_s: Mapped[int | None] = mapped_column(BigInteger)
    time_zone: Mapped[str] = mapped_column(String(64))
    start_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    end_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    catch_up: Mapped[str] = mapped_column(String(8))
    #: ``[{"queue": ..., "name": ..., "data": {...}}]``; ``"{date}"`` in a data value
    #: becomes the local date of the run.
    jobs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_run_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job a schedule enqueues at each run."""

    queue: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """As stored."""
        return {"queue": self.queue, "name": self.name, "data": self.data}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as the API and the tick handler see it."""

    id: str
    name: str
    spec: ScheduleSpec
    jobs: tuple[ScheduledJob, ...]
    company_id: str | None = None
    builtin: str | None = None
    catch_up: CatchUp = "once"
    paused: bool = False
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The next run after ``moment`` (``None`` when paused or past the end)."""
        return None if self.paused else next_run(self.spec, moment)

    def latest_due(self, moment: datetime) -> datetime | None:
        """The newest due time at or before ``moment``."""
        return latest_run_at_or_before(self.spec, moment)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def to_schedule(row: ScheduleRow) -> Schedule:
    """The row as a :class:`Schedule`."""
    spec = ScheduleSpec(
        cron=row.cron,
        every_s=row.every_s,
        time_zone=row.time_zone,
        start=_at(row.start_at_ms),
        end=_at(row.end_at_ms),
    )
    jobs = tuple(ScheduledJob(j["queue"], j["name"], dict(j.get("data") or {})) for j in row.jobs)
    return Schedule(
        id=row.id,
        name=row.name,
        spec=spec,
        jobs=jobs,
        company_id=row.company_id,
        builtin=row.builtin,
        catch_up="skip" if row.catch_up == "skip" else "once",
        paused=row.paused,
        next_run_at=_at(row.next_run_at_ms),
        last_run_at=_at(row.last_run_at_ms),
    )


class ScheduleStore:
    """Schedules in the app database; every method works in the caller's session, so a
    change and its audit entry (or a claim and its tick) commit together."""

    async def row(self, session: AsyncSession, schedule_id: str) -> ScheduleRow | None:
        """One schedule's row (for :meth:`claim`)."""
        return await session.get(ScheduleRow, schedule_id)

    async def get(self, session: AsyncSession, schedule_id: str) -> Schedule | None:
        """One schedule."""
        row = await session.get(ScheduleRow, schedule_id)
        return None if row is None else to_schedule(row)

    async def list(
        self, session: AsyncSession, company_id: str | None = None, *, every_company: bool = False
    ) -> list[Schedule]:
        """A company's schedules (platform-wide ones with ``every_company``: all)."""
        query = select(ScheduleRow).order_by(ScheduleRow.company_id, ScheduleRow.name)
        if not every_company:
            query = query.where(ScheduleRow.company_id == company_id)
        return [to_schedule(row) for row in await session.scalars(query)]

    async def save(self, session: AsyncSession, schedule: Schedule, now: datetime) -> Schedule:
        """Create or replace ``schedule`` (validated); its next run counts from ``now``."""
        spec = validate(schedule.spec)
        row = await session.get(ScheduleRow, schedule.id)
        now_ms = _ms(now) or 0
        if row is None:
            row = ScheduleRow(id=schedule.id, created_at_ms=now_ms)
            session.add(row)
        row.company_id = schedule.company_id
        row.name = schedule.name
        row.builtin = schedule.builtin
        row.cron = spec.cron
        row.every_s = spec.every_s
        row.time_zone = spec.time_zone
        row.start_at_ms = _ms(spec.start)
        row.end_at_ms = _ms(spec.end)
        row.catch_up = schedule.catch_up
        row.jobs = [job.as_json() for job in schedule.jobs]
        row.paused = schedule.paused
        row.next_run_at_ms = _ms(replace(schedule, spec=spec).next_after(now))
        row.updated_at_ms = now_ms
        await session.flush()
        return to_schedule(row)

    async def set_paused(
        self, session: AsyncSession, schedule_id: str, paused: bool, now: datetime
    ) -> Schedule | None:
        """Pause (no next run) or resume (next run from ``now``: missed runs of a pause
        are not caught up)."""
        row = await session.get(ScheduleRow, schedule_id)
        if row is None:
            return None
        row.paused = paused
        row.next_run_at_ms = None if paused else _ms(next_run(to_schedule(row).spec, now))
        row.updated_at_ms = _ms(now) or 0
        await session.flush()
        return to_schedule(row)

    async def delete(self, session: AsyncSession, schedule_id: str) -> bool:
        """Remove a schedule; whether it existed."""
        result = await session.execute(delete(ScheduleRow).where(ScheduleRow.id == schedule_id))
        return bool(getattr(result, "rowcount", 0))

    async def mark_run(self, session: AsyncSession, schedule_id: str, due: datetime) -> bool:
        """Record that the run of ``due`` enqueued its jobs; ``False`` when it (or a
        later one) already did. Compare-and-set in the app database, which every tick
        reaches whichever store it came from: a due time claimed locally while Redis
        was down and BullMQ's tick for it after Redis came back run once."""
        due_ms = _ms(due)
        result = await session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == schedule_id,
                (ScheduleRow.last_run_at_ms.is_(None)) | (ScheduleRow.last_run_at_ms < due_ms),
            )
            .values(last_run_at_ms=due_ms)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def due(self, session: AsyncSession, now: datetime) -> Sequence[ScheduleRow]:
        """Active schedules whose next run has come."""
        rows = await session.scalars(
            select(ScheduleRow).where(
                ScheduleRow.paused.is_(False),
                ScheduleRow.next_run_at_ms.is_not(None),
                ScheduleRow.next_run_at_ms <= _ms(now),
            )
        )
        return list(rows)

    async def claim(
        self, session: AsyncSession, row: ScheduleRow, now: datetime
    ) -> datetime | None:
        """Take the due run of ``row`` for this process: the newest due time at or before
        ``now`` (one run however many were missed), or ``None`` when another process
        took it first. Compare-and-set on ``next_run_at_ms``: of processes claiming the
        same due time, exactly one updates the row."""
        schedule = to_schedule(row)
        due = schedule.latest_due(now)
        following = schedule.next_after(now)
        result = await session.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.id == row.id,
                ScheduleRow.next_run_at_ms == row.next_run_at_ms,
                ScheduleRow.paused.is_(False),
            )
            .values(next_run_at_ms=_ms(following))
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return None
        return due
