"""Job operations: list, show, retry, remove, clean, promote, pause and resume.

Who may: platform_admin (every job), admin and company_admin (the jobs made for
their company; another company's job answers 404). Pausing and resuming a queue
stops or starts it for every company, so only a platform_admin may. Each change is
written to the audit log in the same transaction (``GET /api/queue/audit``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy import func, select

from ils.domain.audit import AuditEntry
from ils.domain.companies import MANAGER_ROLES, Role, User
from ils.errors import InvalidJobStateError, JobNotFoundError
from ils.queue.model import JobRecord, JobState
from ils.queue.system import JobSystem
from ils.web.deps import SessionDep, StateDep, SystemDep, not_found, queue_key, require_roles
from ils.web.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, Page, error_responses
from ils.web.schemas.queues import (
    AuditOut,
    BulkIn,
    BulkOut,
    CleanIn,
    CountOut,
    JobDetailOut,
    JobPage,
    JobSummaryOut,
)
from ils.web.services import queue_jobs as service
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/queue", tags=["queues"])

QueueAdmin = Annotated[User, Depends(require_roles(*MANAGER_ROLES))]
PlatformAdmin = Annotated[User, Depends(require_roles(Role.PLATFORM_ADMIN))]
QueueKey = Annotated[str, Path(max_length=64, description="email, pdf, notification, ...")]
JobId = Annotated[str, Path(max_length=255)]
CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {"description": "the job's state does not allow it"}
}


async def _release(session: SessionDep) -> None:
    """End the request's transaction before the store works.

    On SQLite the request's first read took the database's one write lock (a write
    request begins ``IMMEDIATE``); the local store changes jobs in transactions of its
    own and would wait for that lock until it timed out. The audit entry is written
    afterwards, in a new transaction of the same session.
    """
    await session.commit()


async def _job(system: JobSystem, queue: str, job_id: str, user: User) -> JobRecord:
    job = await service.find_job(system, queue_key(system, queue), job_id, user)
    if job is None:
        raise not_found()
    return job


@router.get(
    "/audit", summary="The audit log of queue operations", responses=error_responses(401, 403)
)
async def audit_log(
    user: QueueAdmin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AuditOut]:
    """Newest first. A platform_admin reads every entry; others their company's."""
    query = select(AuditEntry)
    if not service.sees_all(user):
        query = query.where(AuditEntry.company_id == user.company_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    items = [AuditOut.model_validate(row) for row in rows]
    return Page[AuditOut](items=items, total=int(total or 0), limit=limit, offset=offset)


@router.get(
    "/{queue}/jobs",
    summary="List a queue's jobs by state",
    responses=error_responses(401, 403, 404),
)
async def list_jobs(
    queue: QueueKey,
    user: QueueAdmin,
    system: SystemDep,
    state: JobState = JobState.WAITING,
    search: Annotated[
        str | None, Query(max_length=200, description="Text in the name, id or payload.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """Newest first."""
    found = await service.find_jobs(
        system,
        queue_key(system, queue),
        state,
        user,
        text=search or None,
        offset=offset,
        limit=limit,
    )
    return JobPage(
        items=[JobSummaryOut.of(job) for job in found.jobs],
        total=found.total,
        limit=limit,
        offset=offset,
        truncated=found.truncated,
    )


@router.get(
    "/{queue}/jobs/{job_id}", summary="One job in full", responses=error_responses(401, 403, 404)
)
async def get_job(
    queue: QueueKey, job_id: JobId, user: QueueAdmin, system: SystemDep
) -> JobDetailOut:
    """Payload, options, attempts, progress, log lines, result, failure reason and
    stack trace, timestamps."""
    return JobDetailOut.of(await _job(system, queue, job_id, user))


async def _operate(
    action: str, queue: str, job_id: str, user: User, system: JobSystem
) -> JobRecord:
    job = await _job(system, queue, job_id, user)
    store = service.store_of(system, job)
    try:
        if action == "retry":
            await store.retry_job(job.queue, job.id)
        elif action == "remove":
            await store.remove_job(job.queue, job.id)
        else:
            await store.promote(job.queue, job.id)
    except JobNotFoundError:
        raise not_found() from None
    except InvalidJobStateError:
        raise HTTPException(409, f"cannot {action} a job that is {job.state}") from None
    return job


async def _act(
    action: str,
    queue: str,
    job_id: str,
    user: User,
    system: JobSystem,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> JobRecord:
    """One job's operation as a route does it: release the request's transaction, act
    on the job, audit it."""
    await _release(session)
    job = await _operate(action, queue, job_id, user, system)
    detail = {"name": job.name} if action == "remove" else {}
    service.audit(session, request, user, now_utc(state.clock), action, job.queue, job.id, **detail)
    return job


@router.post(
    "/{queue}/jobs/{job_id}/retry",
    summary="Retry a failed job",
    responses={**error_responses(401, 403, 404), **CONFLICT},
)
async def retry_job(
    queue: QueueKey,
    job_id: JobId,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> JobDetailOut:
    """Back to waiting with its attempts reset; 409 unless it failed."""
    await _act("retry", queue, job_id, user, system, session, request, state)
    return JobDetailOut.of(await _job(system, queue, job_id, user))


@router.post(
    "/{queue}/jobs/{job_id}/promote",
    summary="Run a delayed job now",
    responses={**error_responses(401, 403, 404), **CONFLICT},
)
async def promote_job(
    queue: QueueKey,
    job_id: JobId,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> JobDetailOut:
    """Waiting now instead of at its due time; 409 unless it is delayed."""
    await _act("promote", queue, job_id, user, system, session, request, state)
    return JobDetailOut.of(await _job(system, queue, job_id, user))


@router.delete(
    "/{queue}/jobs/{job_id}",
    status_code=204,
    summary="Remove a job",
    responses={**error_responses(401, 403, 404), **CONFLICT},
)
async def remove_job(
    queue: QueueKey,
    job_id: JobId,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> Response:
    """Deleted with its logs; 409 while a worker runs it."""
    await _act("remove", queue, job_id, user, system, session, request, state)
    return Response(status_code=204)


@router.post(
    "/{queue}/jobs/bulk",
    summary="Retry or remove chosen jobs",
    responses=error_responses(401, 403, 404),
)
async def bulk(
    queue: QueueKey,
    body: BulkIn,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> BulkOut:
    """Each job is handled on its own: one that cannot be (not found, not failed,
    running) is skipped with the reason, the others are done."""
    await _release(session)
    key = queue_key(system, queue)
    done: list[str] = []
    skipped: dict[str, str] = {}
    for job_id in dict.fromkeys(body.job_ids):
        try:
            await _operate(body.action, key, job_id, user, system)
        except HTTPException as exc:
            skipped[job_id] = "not found" if exc.status_code == 404 else str(exc.detail)
            continue
        done.append(job_id)
    if done:
        service.audit(
            session, request, user, now_utc(state.clock), f"bulk-{body.action}", key,
            count=len(done), job_ids=done,
        )  # fmt: skip
    return BulkOut(done=done, skipped=skipped)


@router.post(
    "/{queue}/retry-failed",
    summary="Retry every failed job",
    responses=error_responses(401, 403, 404),
)
async def retry_failed(
    queue: QueueKey,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> CountOut:
    """A platform_admin retries the whole queue's; others their company's."""
    await _release(session)
    key = queue_key(system, queue)
    count = 0
    if service.sees_all(user):
        for store in system.reachable_stores():
            count += await store.retry_failed(key)
    else:
        for job in await service.visible_jobs_in(system, key, JobState.FAILED, user):
            try:
                await service.store_of(system, job).retry_job(key, job.id)
                count += 1
            except (JobNotFoundError, InvalidJobStateError):
                continue
    service.audit(session, request, user, now_utc(state.clock), "retry-failed", key, count=count)
    return CountOut(count=count)


@router.post(
    "/{queue}/clean",
    summary="Delete jobs of a state older than a grace",
    responses=error_responses(401, 403, 404),
)
async def clean(
    queue: QueueKey,
    body: CleanIn,
    user: QueueAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> CountOut:
    """Completed or failed jobs by finish time, others by creation time."""
    await _release(session)
    key = queue_key(system, queue)
    wanted = JobState(body.state)
    count = 0
    if service.sees_all(user):
        for store in system.reachable_stores():
            count += await store.clean(
                key, wanted, older_than_ms=body.older_than_s * 1000, limit=body.limit
            )
    else:
        cutoff = system.clock.now_ms() - body.older_than_s * 1000
        for job in await service.visible_jobs_in(system, key, wanted, user):
            stamp = job.finished_at_ms or job.created_at_ms
            if stamp > cutoff or (body.limit and count >= body.limit):
                continue
            try:
                await service.store_of(system, job).remove_job(key, job.id)
                count += 1
            except (JobNotFoundError, InvalidJobStateError):
                continue
    service.audit(
        session, request, user, now_utc(state.clock), "clean", key,
        state=body.state, older_than_s=body.older_than_s, limit=body.limit, count=count,
    )  # fmt: skip
    return CountOut(count=count)


async def _switch(
    action: str,
    queue: str,
    user: User,
    system: JobSystem,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> Response:
    key = queue_key(system, queue)
    await _release(session)
    for store in system.reachable_stores():
        await (store.pause(key) if action == "pause" else store.resume(key))
    service.audit(session, request, user, now_utc(state.clock), action, key)
    return Response(status_code=204)


@router.post(
    "/{queue}/pause",
    status_code=204,
    summary="Pause a queue (platform_admin)",
    responses=error_responses(401, 403, 404),
)
async def pause(
    queue: QueueKey,
    user: PlatformAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> Response:
    """No new jobs start (running ones finish) until it is resumed."""
    return await _switch("pause", queue, user, system, session, request, state)


@router.post(
    "/{queue}/resume",
    status_code=204,
    summary="Resume a paused queue (platform_admin)",
    responses=error_responses(401, 403, 404),
)
async def resume(
    queue: QueueKey,
    user: PlatformAdmin,
    system: SystemDep,
    session: SessionDep,
    request: Request,
    state: StateDep,
) -> Response:
    """Jobs start again."""
    return await _switch("resume", queue, user, system, session, request, state)
