"""Failure groups: failed jobs grouped by fingerprint; retry or remove a whole group.

Who may: as for the other job operations (``queue_jobs``): platform_admin (every
company's failed jobs), admin and company_admin (their company's; another company's
group answers 404 exactly as one that does not exist). The groups come from
:func:`ils.jobs.failures.group_failures` over the user's scoped ``JobAdmin``.

A group action runs like the bulk job actions: in the request's transaction (the
local store through ``JobAdmin.within``), audited there through the one audit path of
``ils.web.services.queue_jobs`` (actions ``group-retry`` and ``group-remove``), so the
jobs' change and its audit entry commit together or not at all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ils.jobs.admin import SCAN_LIMIT, JobAction
from ils.jobs.failures import RECENT_PER_QUEUE, group_failures, remove_group, retry_group
from ils.web.deps import JobOperator, ManagerOperator, ManagerUser, SystemDep, queue_key
from ils.web.disclosure import failures_for
from ils.web.schemas.common import error_responses
from ils.web.schemas.failures import FailureGroupsOut, GroupActionOut
from ils.web.services import queue_jobs as service

router = APIRouter(prefix="/api/queue/failures", tags=["queues"])

FingerprintId = Annotated[str, Path(max_length=100, description="`<queue>-<16 hex digits>`")]


@router.get(
    "", summary="Failed jobs grouped by fingerprint", responses=error_responses(401, 403, 404)
)
async def failure_groups(
    user: ManagerUser,
    system: SystemDep,
    queue: Annotated[str | None, Query(max_length=64, description="Only this queue.")] = None,
    per_queue: Annotated[
        int, Query(ge=1, le=SCAN_LIMIT, description="Newest failed jobs read per queue.")
    ] = RECENT_PER_QUEUE,
) -> FailureGroupsOut:
    """Largest group first. Built from the newest ``per_queue`` failed jobs of each
    queue: ``failed`` says how many there are, ``truncated`` whether some were not
    read."""
    queues = [queue_key(system, queue)] if queue else list(system.catalogue)
    report = await group_failures(service.admin_for(system, user), queues, per_queue=per_queue)
    return failures_for(report, user)


async def _act(action: JobAction, fingerprint: str, op: JobOperator) -> GroupActionOut:
    """A group action as a route does it: in the request's transaction, audited there."""
    act = retry_group if action is JobAction.RETRY else remove_group
    result = await act(op.admin(), fingerprint, op.system.catalogue)
    if result.done:
        found = result.fingerprint
        op.audit(
            f"group-{action.value}", found.queue,
            fingerprint=fingerprint, name=found.name, exception_type=found.exception_type,
            message=found.message, count=len(result.done), missing=len(result.missing),
            job_ids=result.done,
        )  # fmt: skip
    return GroupActionOut.of(fingerprint, result)


@router.post(
    "/{fingerprint}/retry",
    summary="Retry every failed job of a group",
    responses=error_responses(401, 403, 404),
)
async def retry(fingerprint: FingerprintId, op: ManagerOperator) -> GroupActionOut:
    """Back to waiting with their attempts reset, in batches; 404 when no failed job
    you may see has this fingerprint."""
    return await _act(JobAction.RETRY, fingerprint, op)


@router.post(
    "/{fingerprint}/remove",
    summary="Remove every failed job of a group",
    responses=error_responses(401, 403, 404),
)
async def remove(fingerprint: FingerprintId, op: ManagerOperator) -> GroupActionOut:
    """Deleted with their logs, in batches; 404 as for retry."""
    return await _act(JobAction.REMOVE, fingerprint, op)
