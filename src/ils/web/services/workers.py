"""The workers view as a user may see it, for the API and the dashboard alike.

One function, so ``GET /api/queue/workers`` and ``/admin/workers`` cannot scope
differently: a platform_admin sees every worker in full, a company's admins see the
processes without hosts and pids and only their company's running jobs (the reasons
are in :mod:`ils.jobs.workers_view`).
"""

from __future__ import annotations

from ils.domain.companies import User
from ils.jobs.system import JobSystem
from ils.jobs.workers_view import WorkersView, worker_processes
from ils.web.services.queue_jobs import sees_all


async def workers_for(system: JobSystem, user: User) -> WorkersView:
    """Every worker seen in the last hour, scoped to ``user``; raises
    :class:`~ils.errors.StoreUnavailableError` (503) when the app database is down."""
    view = await worker_processes(
        system.local, system.clock.now_ms(), system.settings.worker_heartbeat_s
    )
    return view.for_company(None if sees_all(user) else user.company_id)
