"""Job operations: list, show, retry, remove, clean, promote, pause and resume.

Who may: platform_admin (every job), admin and company_admin (the jobs made for
their company; another company's job answers 404). Pausing and resuming a queue
stops or starts it for every company, so only a platform_admin may. Each change is
written to the audit log (``GET /api/queue/audit``) in the request's transaction.

No route commits in its middle. On SQLite the request holds the database's write lock
from its first statement, so the local store's changes run on the request's own
connection (``JobAdmin.within``): the job change and its audit entry commit together
when the route returns, and a refused or failed operation leaves neither. A change in
Redis takes effect at once; its audit entry commits with the request.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from ils.domain.companies import Role
from ils.errors import InvalidJobStateError, JobNotFoundError
from ils.jobs.admin import JobAction, JobAdmin
from ils.jobs.model import JobRecord, JobState
from ils.web.deps import (
    JobOperator,
    ManagerOperator,
    ManagerUser,
    PagingDep,
    SessionDep,
    SystemDep,
    job_operator,
    not_found,
    queue_key,
)
from ils.web.disclosure import job_detail, job_summary
from ils.web.schemas.common import DEFAULT_LIMIT, Limit, Offset, Page, error_responses
from ils.web.schemas.queues import (
    AuditOut,
    BulkIn,
    BulkOut,
    CleanIn,
    CountOut,
    JobDetailOut,
    JobPage,
)
from ils.web.services import queue_jobs as service

router = APIRouter(prefix="/api/queue", tags=["queues"])

#: What stops or starts a queue for every company is a platform_admin's; the other
#: routes that change jobs are a manager's (``ManagerOperator``: their company's jobs).
PlatformOperator = Annotated[JobOperator, Depends(job_operator(Role.PLATFORM_ADMIN))]
QueueKey = Annotated[str, Path(max_length=64, description="email, pdf, notification, ...")]
JobId = Annotated[str, Path(max_length=255)]
#: The answers of an operation on one job: 409 when the job's state does not allow it.
ACT_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    **error_responses(401, 403, 404),
    409: {"description": "the job's state does not allow it"},
}


async def _job(admin: JobAdmin, queue: str, job_id: str) -> JobRecord:
    job = await admin.find(queue, job_id)
    if job is None:
        raise not_found()
    return job


def _refusal(exc: JobNotFoundError | InvalidJobStateError) -> HTTPException:
    """The API's answer to an operation a job cannot take: 404 as for any unknown job,
    409 naming the state the job was found in."""
    if isinstance(exc, JobNotFoundError):
        return not_found()
    return HTTPException(409, f"cannot {exc.operation} a job that is {exc.state}")


@router.get(
    "/audit", summary="The audit log of queue operations", responses=error_responses(401, 403)
)
async def audit_log(user: ManagerUser, session: SessionDep, paging: PagingDep) -> Page[AuditOut]:
    """Newest first. A platform_admin reads every entry; others their company's."""
    rows, total = await service.visible_audit(session, user, paging.limit, paging.offset)
    return paging.page(rows, total, AuditOut.model_validate)


@router.get(
    "/{queue}/jobs",
    summary="List a queue's jobs by state",
    responses=error_responses(401, 403, 404),
)
async def list_jobs(
    queue: QueueKey,
    user: ManagerUser,
    system: SystemDep,
    state: JobState = JobState.WAITING,
    search: Annotated[
        str | None, Query(max_length=200, description="Text in the name, id or payload.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
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
        items=[job_summary(job, user) for job in found.jobs],
        total=found.total,
        limit=limit,
        offset=offset,
        truncated=found.truncated,
    )


@router.get(
    "/{queue}/jobs/{job_id}", summary="One job in full", responses=error_responses(401, 403, 404)
)
async def get_job(
    queue: QueueKey, job_id: JobId, user: ManagerUser, system: SystemDep
) -> JobDetailOut:
    """Payload, options, attempts, progress, log lines, result, failure reason and
    stack trace, timestamps. Stack traces, and paths in the reason and log lines,
    for a platform_admin only (:func:`ils.web.disclosure.job_for`)."""
    admin = service.admin_for(system, user)
    return job_detail(await _job(admin, queue_key(system, queue), job_id), user)


async def _act(op: JobOperator, action: JobAction, queue: str, job_id: str) -> JobAdmin:
    """One job's operation as a route does it: act on the job in the request's
    transaction, audit it there; the admin, to read the job as it is now."""
    admin = op.admin()
    try:
        job = await admin.act(action, op.queue_key(queue), job_id)
    except (JobNotFoundError, InvalidJobStateError) as exc:
        raise _refusal(exc) from None
    detail = {"name": job.name} if action is JobAction.REMOVE else {}
    op.audit(action.value, job.queue, job.id, **detail)
    return admin


async def _act_and_show(
    op: JobOperator, action: JobAction, queue: str, job_id: str
) -> JobDetailOut:
    """The answer of an operation that leaves the job in place: the job after it."""
    admin = await _act(op, action, queue, job_id)
    return job_detail(await _job(admin, op.queue_key(queue), job_id), op.user)


@router.post("/{queue}/jobs/{job_id}/retry", summary="Retry a failed job", responses=ACT_RESPONSES)
async def retry_job(queue: QueueKey, job_id: JobId, op: ManagerOperator) -> JobDetailOut:
    """Back to waiting with its attempts reset; 409 unless it failed."""
    return await _act_and_show(op, JobAction.RETRY, queue, job_id)


@router.post(
    "/{queue}/jobs/{job_id}/promote", summary="Run a delayed job now", responses=ACT_RESPONSES
)
async def promote_job(queue: QueueKey, job_id: JobId, op: ManagerOperator) -> JobDetailOut:
    """Waiting now instead of at its due time; 409 unless it is delayed."""
    return await _act_and_show(op, JobAction.PROMOTE, queue, job_id)


@router.delete(
    "/{queue}/jobs/{job_id}",
    status_code=204,
    summary="Remove a job",
    responses=ACT_RESPONSES,
)
async def remove_job(queue: QueueKey, job_id: JobId, op: ManagerOperator) -> Response:
    """Deleted with its logs; 409 while a worker runs it."""
    await _act(op, JobAction.REMOVE, queue, job_id)
    return Response(status_code=204)


@router.post(
    "/{queue}/jobs/bulk",
    summary="Retry or remove chosen jobs",
    responses=error_responses(401, 403, 404),
)
async def bulk(queue: QueueKey, body: BulkIn, op: ManagerOperator) -> BulkOut:
    """Each job is handled on its own: one that cannot be (not found, not failed,
    running) is skipped with the reason, the others are done."""
    key = op.queue_key(queue)
    action = JobAction(body.action)
    result = await op.admin().bulk(action, key, body.job_ids)
    if result.done:
        op.audit(f"bulk-{action.value}", key, count=len(result.done), job_ids=result.done)
    skipped = {job_id: str(_refusal(exc).detail) for job_id, exc in result.skipped.items()}
    return BulkOut(done=result.done, skipped=skipped)


@router.post(
    "/{queue}/retry-failed",
    summary="Retry every failed job",
    responses=error_responses(401, 403, 404),
)
async def retry_failed(queue: QueueKey, op: ManagerOperator) -> CountOut:
    """A platform_admin retries the whole queue's; others their company's."""
    key = op.queue_key(queue)
    count = await op.admin().retry_failed(key)
    op.audit("retry-failed", key, count=count)
    return CountOut(count=count)


@router.post(
    "/{queue}/clean",
    summary="Delete jobs of a state older than a grace",
    responses=error_responses(401, 403, 404),
)
async def clean(queue: QueueKey, body: CleanIn, op: ManagerOperator) -> CountOut:
    """Completed or failed jobs by finish time, others by creation time."""
    key = op.queue_key(queue)
    count = await op.admin().clean(
        key, JobState(body.state), older_than_ms=body.older_than_s * 1000, limit=body.limit
    )
    op.audit(
        "clean", key,
        state=body.state, older_than_s=body.older_than_s, limit=body.limit, count=count,
    )  # fmt: skip
    return CountOut(count=count)


@router.post(
    "/{queue}/pause",
    status_code=204,
    summary="Pause a queue (platform_admin)",
    responses=error_responses(401, 403, 404),
)
async def pause(queue: QueueKey, op: PlatformOperator) -> Response:
    """No new jobs start (running ones finish) until it is resumed."""
    key = op.queue_key(queue)
    await op.admin().pause(key)
    op.audit("pause", key)
    return Response(status_code=204)


@router.post(
    "/{queue}/resume",
    status_code=204,
    summary="Resume a paused queue (platform_admin)",
    responses=error_responses(401, 403, 404),
)
async def resume(queue: QueueKey, op: PlatformOperator) -> Response:
    """Jobs start again."""
    key = op.queue_key(queue)
    await op.admin().resume(key)
    op.audit("resume", key)
    return Response(status_code=204)
