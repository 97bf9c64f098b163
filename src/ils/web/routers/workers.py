"""The workers view API: ``GET /api/queue/workers``.

Who may: platform_admin, admin and company_admin (401 without a session, 403 for the
other roles), as for the other queue monitoring routes. A platform_admin sees every
worker process in full; a company's admins see the same processes without hosts and
process ids, and of their running jobs only their company's (see
:mod:`ils.jobs.workers_view` for why). The dashboard's ``/admin/workers`` shows the
same view.
"""

from __future__ import annotations

from fastapi import APIRouter

from ils.web.deps import ManagerUser, SystemDep
from ils.web.schemas.common import error_responses
from ils.web.schemas.workers import WorkersOut
from ils.web.services.workers import workers_for

router = APIRouter(prefix="/api/queue", tags=["queues"])


@router.get(
    "/workers",
    summary="Worker processes: live and recently gone, with their running jobs",
    responses=error_responses(401, 403),
)
async def list_workers(user: ManagerUser, system: SystemDep) -> WorkersOut:
    """Each live worker process (host, pid, version, queues, concurrency, running jobs,
    start, last heartbeat, jobs done and failed since start), as of its last
    heartbeat, and the workers gone within the last hour (``gone``: ``stopped`` or
    ``silent``)."""
    return WorkersOut.of(await workers_for(system, user))
