"""Schedule management (``/api/schedules``): admins only, every change audited.

Platform admins see and manage every schedule; admins and company admins their
company's (see :mod:`ils.web.services.schedules` for what each may schedule). Next run
times are computed at the moment of the request. In Redis mode a change also updates
BullMQ's job schedulers at once (the scheduler loop would within its sync interval).
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import APIRouter, HTTPException, Request, Response

from ils.domain.companies import Role, User
from ils.domain.types import new_id
from ils.errors import ILSError
from ils.queue.schedules import TICK_QUEUE, Schedule, ScheduleStore
from ils.web.deps import CurrentCompany, ManagerUser, SessionDep, StateDep, not_found
from ils.web.schemas.ai import QueuedOut
from ils.web.schemas.common import error_responses
from ils.web.schemas.schedules import ScheduleEdit, ScheduleIn, ScheduleOut
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


async def _after_change(session: SessionDep, state: WebState) -> None:
    """Commit, then bring BullMQ's schedulers in step (Redis mode; best effort)."""
    await session.commit()
    if not state.system.redis_in_use:
        return
    try:
        schedules = await _store().list(session, every_company=True)
        await state.system.sync_job_schedulers(schedules)
    except ILSError as error:
        logging.getLogger(__name__).warning("job schedulers not synced now: %s", error)


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


@router.get("/{schedule_id}", summary="One schedule", responses=RESPONSES)
async def get_schedule(
    schedule_id: str, user: ManagerUser, session: SessionDep, state: StateDep
) -> ScheduleOut:
    schedule = await _visible(session, user, schedule_id)
    return service.schedule_out(schedule, now_utc(state.clock))


@router.post("", status_code=201, summary="Create a schedule", responses=RESPONSES)
async def create_schedule(
    body: ScheduleIn,
    request: Request,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> ScheduleOut:
    now = now_utc(state.clock)
    schedule = service.new_schedule(
        f"custom:{new_id()}",
        body,
        user,
        company,
        state.system.job_types,
        company.local_date(now),
    )
    saved = await _store().save(session, schedule, now)
    audit(session, request, user, now, "schedule-create", TICK_QUEUE, saved.id, name=saved.name)
    await _after_change(session, state)
    return service.schedule_out(saved, now)


@router.patch("/{schedule_id}", summary="Edit a schedule", responses=CHANGE_RESPONSES)
async def edit_schedule(
    schedule_id: str,
    body: ScheduleEdit,
    request: Request,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
) -> ScheduleOut:
    schedule = await _visible(session, user, schedule_id)
    if schedule.builtin:
        raise HTTPException(409, BUILTIN)
    now = now_utc(state.clock)
    changed = service.edited(
        schedule, body, user, company, state.system.job_types, company.local_date(now)
    )
    saved = await _store().save(session, changed, now)
    fields = sorted(body.model_fields_set)
    audit(session, request, user, now, "schedule-update", TICK_QUEUE, saved.id, fields=fields)
    await _after_change(session, state)
    return service.schedule_out(saved, now)


async def _pause(
    schedule_id: str,
    paused: bool,
    request: Request,
    user: User,
    session: SessionDep,
    state: WebState,
) -> ScheduleOut:
    await _visible(session, user, schedule_id)
    now = now_utc(state.clock)
    saved = await _store().set_paused(session, schedule_id, paused, now)
    if saved is None:
        raise not_found()
    action = "schedule-pause" if paused else "schedule-resume"
    audit(session, request, user, now, action, TICK_QUEUE, schedule_id)
    await _after_change(session, state)
    return service.schedule_out(saved, now)


@router.post("/{schedule_id}/pause", summary="Pause a schedule", responses=RESPONSES)
async def pause_schedule(
    schedule_id: str, request: Request, user: ManagerUser, session: SessionDep, state: StateDep
) -> ScheduleOut:
    """No run until resumed."""
    return await _pause(schedule_id, True, request, user, session, state)


@router.post("/{schedule_id}/resume", summary="Resume a schedule", responses=RESPONSES)
async def resume_schedule(
    schedule_id: str, request: Request, user: ManagerUser, session: SessionDep, state: StateDep
) -> ScheduleOut:
    """Runs again from its next due time; runs missed while paused are not caught up."""
    return await _pause(schedule_id, False, request, user, session, state)


@router.post(
    "/{schedule_id}/run", status_code=202, summary="Run a schedule now", responses=RESPONSES
)
async def run_schedule_now(
    schedule_id: str, request: Request, user: ManagerUser, session: SessionDep, state: StateDep
) -> QueuedOut:
    """Queues its tick at once (a paused schedule too); its regular runs are unchanged."""
    schedule = await _visible(session, user, schedule_id)
    ref = await state.system.helpers.queue_schedule_run(schedule.id, True, session=session)
    audit(session, request, user, now_utc(state.clock), "schedule-run", TICK_QUEUE, schedule.id)
    return QueuedOut(queue=ref.queue, name=ref.name, job_id=ref.job_id)


@router.delete(
    "/{schedule_id}", status_code=204, summary="Delete a schedule", responses=CHANGE_RESPONSES
)
async def delete_schedule(
    schedule_id: str, request: Request, user: ManagerUser, session: SessionDep, state: StateDep
) -> Response:
    schedule = await _visible(session, user, schedule_id)
    if schedule.builtin:
        raise HTTPException(409, BUILTIN)
    await _store().delete(session, schedule.id)
    now = now_utc(state.clock)
    audit(session, request, user, now, "schedule-delete", TICK_QUEUE, schedule.id)
    await _after_change(session, state)
    return Response(status_code=204)
