"""Schedule management (``/api/schedules``): admins only, every change audited.

Platform admins see and manage every schedule; admins and company admins their
company's (see :mod:`ils.web.services.schedules` for what each may schedule). Next run
times are computed at the moment of the request. ``POST /api/schedules/preview``
answers the next runs of a timing before anything is saved (the dashboard's form asks
as the admin types), with the same rules and words as creating one, and stores nothing.

A change and its audit entry are one transaction, the request's, committed once when
the handler returns (``SessionDep``). In Redis mode BullMQ's job schedulers must then
follow the schedules table; that runs as a background task of the response, after the
commit, rather than by committing halfway through the handler:

* The sync must see the change committed: syncing first, BullMQ could run (or stop
  running) a schedule whose change then fails to commit.
* Committing mid-request split the change from anything after it (a failure there
  answered 500 for a change already stored), and the sync's read and Redis round trip
  ran inside the request's transaction, which on SQLite holds the process's write
  turn and the database's write lock.
* Running it inside the request's session, as queue admin actions do with the local
  store (``JobAdmin.within``), is not possible: BullMQ's schedulers live in Redis,
  outside any database transaction.

The background task reads the committed schedules in its own read-only transaction and
never fails the request: a failed sync is logged, and the scheduler loop of every
process working the ``scheduled`` queue syncs again within ``builtins_sync_s``
(``ScheduleLoop.sync``), so BullMQ catches up without the change being lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response

from ils.domain.companies import Role, User
from ils.domain.types import new_id
from ils.errors import ILSError
from ils.jobs.schedules.store import TICK_QUEUE, Schedule, ScheduleStore
from ils.web.deps import CurrentCompany, ManagerUser, SessionDep, StateDep, not_found
from ils.web.errors import log_internal_error
from ils.web.schemas.ai import QueuedOut
from ils.web.schemas.common import error_responses
from ils.web.schemas.schedules import (
    ScheduleEdit,
    ScheduleIn,
    ScheduleOut,
    SchedulePreviewIn,
    SchedulePreviewOut,
)
from ils.web.services import schedules as service
from ils.web.services.common import now_utc
from ils.web.services.queue_jobs import audit
from ils.web.state import WebState

router = APIRouter(prefix="/api/schedules", tags=["schedules"])

BUILTIN: Final = "built-in schedules may be paused, resumed and run now, not edited or deleted"
RESPONSES: Final = error_responses(401, 403, 404)
CHANGE_RESPONSES: Final = error_responses(401, 403, 404, 409)


def _store() -> ScheduleStore:
    return ScheduleStore()


async def _visible(session: SessionDep, user: User, schedule_id: str) -> Schedule:
    schedule = await _store().get(session, schedule_id)
    if schedule is None or not service.sees(user, schedule):
        raise not_found()
    return schedule


def _after_change(background: BackgroundTasks, state: WebState) -> None:
    """Bring BullMQ's schedulers in step once the request's transaction has committed.

    FastAPI runs a response's background tasks after the response is sent, which is
    after ``SessionDep`` committed (it commits before the response is sent); when the
    commit fails there is no response, and so no sync of a change that was not stored.
    """
    background.add_task(_sync_job_schedulers, state)


async def _sync_job_schedulers(state: WebState) -> None:
    """Redis mode: BullMQ's schedulers from the committed schedules (best effort).

    Nothing can answer the client any more, so no error escapes: the scheduler loop's
    periodic sync repairs whatever this one could not do.
    """
    if not state.system.schedulers.in_redis:
        return
    logger = logging.getLogger(__name__)
    try:
        async with state.transactions.read() as session:
            schedules = await _store().list(session, every_company=True)
        await state.system.schedulers.sync(schedules)
    except ILSError as error:
        logger.warning("job schedulers not synced now: %s", error)
    except Exception as error:  # a bug or the database: logged, the loop syncs later
        log_internal_error(logger, "the job scheduler sync after a schedule change", error)


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """A request that changes a schedule: who asks, the transaction the change and its
    audit entry share, and the response whose background task syncs BullMQ after it.

    Every change route needs the same five things (user, session, state, request,
    background tasks) for the same steps: find a schedule the user may see, audit the
    change, sync once committed. One dependency gives them, as ``JobOperator`` does
    for job operations, so a route states only what it changes.
    """

    user: User
    session: SessionDep  # the request's AsyncSession
    state: WebState
    request: Request
    background: BackgroundTasks

    def now(self) -> datetime:
        """The moment of the change, from the app's clock (one per change: its save,
        its audit entry and its answer agree)."""
        return now_utc(self.state.clock)

    async def visible(self, schedule_id: str) -> Schedule:
        """The schedule if the user may see it; 404 otherwise."""
        return await _visible(self.session, self.user, schedule_id)

    async def editable(self, schedule_id: str) -> Schedule:
        """The schedule if the user may edit or delete it: 404 as :meth:`visible`, 409
        for a built-in one (those may only be paused, resumed and run now)."""
        schedule = await self.visible(schedule_id)
        if schedule.builtin:
            raise HTTPException(409, BUILTIN)
        return schedule

    def audit(self, now: datetime, action: str, schedule_id: str, **detail: Any) -> None:
        """Record the operation in the request's transaction."""
        audit(self.session, self.request, self.user, now, action, TICK_QUEUE, schedule_id, **detail)

    def done(self, now: datetime, action: str, schedule_id: str, **detail: Any) -> None:
        """Audit a change of the schedules table and sync BullMQ once it is committed."""
        self.audit(now, action, schedule_id, **detail)
        _after_change(self.background, self.state)


async def schedule_change(
    user: ManagerUser,
    session: SessionDep,
    state: StateDep,
    request: Request,
    background: BackgroundTasks,
) -> ScheduleChange:
    """The :class:`ScheduleChange` of a manager's request (401 and 403 as
    ``ManagerUser``)."""
    return ScheduleChange(user, session, state, request, background)


ChangeDep = Annotated[ScheduleChange, Depends(schedule_change)]


@router.get("", summary="List schedules with their next runs", responses=RESPONSES)
async def list_schedules(
    user: ManagerUser, session: SessionDep, state: StateDep
) -> list[ScheduleOut]:
    """Your company's schedules (platform admins: all, platform ones included)."""
    store = _store()
    if user.role is Role.PLATFORM_ADMIN:
        found = await store.list(session, every_company=True)
    else:
        found = await store.list(session, user.company_id)
    now = now_utc(state.clock)
    return [service.schedule_out(s, now) for s in found]


@router.post(
    "/preview",
    summary="The next runs of a cron expression or interval, before saving",
    responses=error_responses(401, 403),
)
async def preview_schedule(
    body: SchedulePreviewIn, user: ManagerUser, company: CurrentCompany, state: StateDep
) -> SchedulePreviewOut:
    """What a schedule with this timing would do from now: its next runs (five unless
    ``count`` says otherwise) in UTC and on its zone's clock, or a 422 saying what to
    fix. Nothing is stored or audited, so the form may ask as the admin types."""
    return service.preview(body, company, now_utc(state.clock))


@router.get("/{schedule_id}", summary="One schedule", responses=RESPONSES)
async def get_schedule(
    schedule_id: str, user: ManagerUser, session: SessionDep, state: StateDep
) -> ScheduleOut:
    schedule = await _visible(session, user, schedule_id)
    return service.schedule_out(schedule, now_utc(state.clock))


@router.post("", status_code=201, summary="Create a schedule", responses=RESPONSES)
async def create_schedule(
    body: ScheduleIn, change: ChangeDep, company: CurrentCompany
) -> ScheduleOut:
    now = change.now()
    owner = await service.owner_of(change.session, body, change.user, company)
    schedule = service.new_schedule(
        f"custom:{new_id()}",
        body,
        change.user,
        owner,
        change.state.system.job_types,
        owner.local_date(now),
    )
    saved = await _store().save(change.session, schedule, now)
    change.done(now, "schedule-create", saved.id, name=saved.name)
    return service.schedule_out(saved, now)


@router.patch("/{schedule_id}", summary="Edit a schedule", responses=CHANGE_RESPONSES)
async def edit_schedule(
    schedule_id: str, body: ScheduleEdit, change: ChangeDep, company: CurrentCompany
) -> ScheduleOut:
    schedule = await change.editable(schedule_id)
    now = change.now()
    job_types = change.state.system.job_types
    edited = service.edited(schedule, body, change.user, job_types, company.local_date(now))
    saved = await _store().save(change.session, edited, now)
    change.done(now, "schedule-update", saved.id, fields=sorted(body.model_fields_set))
    return service.schedule_out(saved, now)


async def _set_paused(change: ScheduleChange, schedule_id: str, paused: bool) -> ScheduleOut:
    """Pause and resume are one change, told apart by ``paused`` and the audit action."""
    await change.visible(schedule_id)
    now = change.now()
    saved = await _store().set_paused(change.session, schedule_id, paused, now)
    if saved is None:
        raise not_found()
    change.done(now, "schedule-pause" if paused else "schedule-resume", schedule_id)
    return service.schedule_out(saved, now)


@router.post("/{schedule_id}/pause", summary="Pause a schedule", responses=RESPONSES)
async def pause_schedule(schedule_id: str, change: ChangeDep) -> ScheduleOut:
    """No run until resumed."""
    return await _set_paused(change, schedule_id, True)


@router.post("/{schedule_id}/resume", summary="Resume a schedule", responses=RESPONSES)
async def resume_schedule(schedule_id: str, change: ChangeDep) -> ScheduleOut:
    """Runs again from its next due time; runs missed while paused are not caught up."""
    return await _set_paused(change, schedule_id, False)


@router.post(
    "/{schedule_id}/run", status_code=202, summary="Run a schedule now", responses=RESPONSES
)
async def run_schedule_now(schedule_id: str, change: ChangeDep) -> QueuedOut:
    """Queues its tick at once (a paused schedule too); its regular runs are unchanged."""
    schedule = await change.visible(schedule_id)
    helpers = change.state.system.helpers
    ref = await helpers.queue_schedule_run(schedule.id, True, session=change.session)
    change.audit(change.now(), "schedule-run", schedule.id)
    return QueuedOut(queue=ref.queue, name=ref.name, job_id=ref.job_id)


@router.delete(
    "/{schedule_id}", status_code=204, summary="Delete a schedule", responses=CHANGE_RESPONSES
)
async def delete_schedule(schedule_id: str, change: ChangeDep) -> Response:
    schedule = await change.editable(schedule_id)
    await _store().delete(change.session, schedule.id)
    change.done(change.now(), "schedule-delete", schedule.id)
    return Response(status_code=204)
