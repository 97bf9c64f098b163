"""The dashboard's failure groups page (``/admin/failures``).

Why it is built this way: like the other pages it renders what the JSON API answers
(``GET /api/queue/failures``: the same :func:`~ils.jobs.failures.group_failures`
over the same scoped admin, the same ``FailureGroupOut`` bodies), and its Retry all /
Remove all buttons are the script's ordinary confirmed, CSRF-carrying actions posting
to ``/api/queue/failures/{fingerprint}/retry|remove``, which audit them: the page
itself changes nothing. Stack traces come collapsed (``<details>``), so the page stays
a list of problems rather than a wall of traces, and needs no script to open one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import HTMLResponse

from ils.jobs.failures import ACTION_MAX_JOBS, group_failures
from ils.web.dashboard.pages import Pages
from ils.web.dashboard.routes import Manager
from ils.web.deps import SystemDep, queue_key
from ils.web.disclosure import failures_for
from ils.web.services import queue_jobs as service


class FailuresPage:
    """The page handler, bound to the app's :class:`Pages`."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def page(
        self,
        auth: Manager,
        system: SystemDep,
        queue: Annotated[str | None, Query(max_length=64)] = None,
    ) -> HTMLResponse:
        """Failed jobs grouped by fingerprint, largest group first, optionally of one
        queue; an unknown queue is the 404 page."""
        key = queue_key(system, queue) if queue else None
        queues = [key] if key else list(system.catalogue)
        report = await group_failures(service.admin_for(system, auth.user), queues)
        return self.pages.render(
            "failures.html",
            auth=auth,
            title="Failure groups" + (f" · {key}" if key else ""),
            section="failures",
            queue=key,
            queues=list(system.catalogue),
            report=failures_for(report, auth.user),
            max_jobs=ACTION_MAX_JOBS,
        )
