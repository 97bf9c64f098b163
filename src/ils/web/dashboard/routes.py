"""The admin dashboard's pages: overview, a queue's jobs, one job, the audit log, the
schedules.

Why it is built this way:

* Pages are rendered on the server from the same service functions and bodies as the
  JSON API (``ils.web.services.queue_jobs``, ``JobSummaryOut``, ``JobDetailOut``,
  ``AuditOut``), so the dashboard shows what the API answers, scoped the same way: a
  company_admin opening another company's job gets the 404 of a job that does not
  exist.
* The browser script only refreshes numbers (``/api/queue/stats``, ``/health``,
  ``/{queue}/throughput``) and sends actions to the API with the session's CSRF token;
  it never turns data into markup (see :mod:`ils.web.dashboard.pages` for escaping,
  the Content-Security-Policy and refusals as pages).
* The schedules page lists what ``GET /api/schedules`` answers (same store, same
  scope, next runs computed at the request) and its buttons and form call the
  schedule API, which audits every change: the page itself changes nothing. The form
  offers the service's ``SCHEDULABLE_JOBS``, the list the API checks, and previews
  runs through ``POST /api/schedules/preview``, so form and API cannot disagree.
* A queue's pause is read from its stores on every page that names the queue
  (:func:`paused_note`), so a paused queue shows as paused and offers Resume only.
* No module globals: :func:`build_router` makes the Jinja environment, the static
  files and the route class once per app (``include_routers`` runs per ``create_app``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ils.domain.companies import MANAGER_ROLES, Role
from ils.domain.company_queries import company_names
from ils.jobs.model import CLEANABLE_STATES, COUNTED_STATES, JobState
from ils.jobs.schedules.store import ScheduleStore
from ils.jobs.system import JobSystem
from ils.web.dashboard.pages import (
    HOME_PATH,
    Pages,
    page_route,
    part,
    safe_next,
    traces_by_attempt,
)
from ils.web.deps import (
    NOT_ALLOWED,
    CurrentAuth,
    Paging,
    PagingDep,
    SessionDep,
    StateDep,
    SystemDep,
    not_found,
    queue_key,
)
from ils.web.disclosure import health_for, job_detail, job_summary
from ils.web.schemas.queues import AuditOut
from ils.web.security import SessionAuth
from ils.web.services import queue_jobs as service
from ils.web.services import schedules as schedule_service
from ils.web.services.common import now_utc

#: How often the overview asks for counts: a count is never more than about 2 s old.
STATS_REFRESH_MS: Final = 2_000
#: Health pings every store: a little slower than the counts.
HEALTH_REFRESH_MS: Final = 5_000
THROUGHPUT_MINUTES: Final = 60


#: The clean form's states, in the order of the state tabs (never ``active``: a running
#: job is locked by its worker).
CLEAN_STATES: Final = [s.value for s in COUNTED_STATES if s in CLEANABLE_STATES]


async def paused_note(system: JobSystem, queue: str) -> str | None:
    """Why ``queue`` is marked paused (the badge's title), or ``None`` when it runs.

    Pausing pauses every reachable store, so a queue paused in only one of them was
    paused while the other was down; the note says which store, and Resume resumes
    both."""
    stores = system.monitor.reachable_stores()
    paused = [store.kind for store in stores if await store.is_paused(queue)]
    if not paused:
        return None
    where = "" if len(paused) == len(stores) else f" in the {paused[0]} store"
    return f"No new jobs start{where} until the queue is resumed; running ones finish."


# -- who may ------------------------------------------------------------------------------


async def manager(auth: CurrentAuth) -> SessionAuth:
    """The signed-in manager's session (platform_admin, admin, company_admin): the
    pages need the session itself, for the CSRF token the script sends back."""
    if auth.user.role not in MANAGER_ROLES:
        raise HTTPException(403, NOT_ALLOWED)
    return auth


Manager = Annotated[SessionAuth, Depends(manager)]
QueueKey = Annotated[str, Path(max_length=64)]
JobId = Annotated[str, Path(max_length=255)]


def _paging(base: str, params: dict[str, Any], paging: Paging, total: int) -> dict[str, Any]:
    """Previous and next links of a paged list (``None`` at either end)."""
    offset, limit = paging.offset, paging.limit

    def link(at: int) -> str:
        query = {key: value for key, value in params.items() if value}
        query.update(offset=at, limit=limit)
        return f"{base}?{urlencode(query)}"

    return {
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "total": total,
        "previous": link(max(offset - limit, 0)) if offset > 0 else None,
        "next": link(offset + limit) if offset + limit < total else None,
    }


class Dashboard:
    """The page handlers; bound methods, so they share one :class:`Pages`."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def home(self) -> RedirectResponse:
        """``/admin`` is the overview."""
        return RedirectResponse(HOME_PATH, status_code=303)

    async def sign_in(
        self, next_path: Annotated[str | None, Query(alias="next", max_length=500)] = None
    ) -> HTMLResponse:
        """The sign-in form; its script posts to ``/api/auth/sign-in``, whose cookies
        the pages then use."""
        return self.pages.render(
            "sign_in.html", auth=None, title="Sign in", next_path=safe_next(next_path)
        )

    async def overview(self, auth: Manager, system: SystemDep) -> HTMLResponse:
        """Every queue's counts, chart and oldest waiting job, and the health panel;
        the first numbers come with the page, the script refreshes them."""
        stats = await system.monitor.stats()
        health = health_for(await system.monitor.health(), auth.user)
        queues = [
            {
                "key": key,
                "description": config.description,
                "counts": stats.get(key) or {},
                "oldest_waiting_age_s": health["queues"].get(key, {}).get("oldest_waiting_age_s"),
                "paused": await paused_note(system, key),
            }
            for key, config in system.catalogue.items()
        ]
        return self.pages.render(
            "overview.html",
            auth=auth,
            title="Queues",
            section="queues",
            queues=queues,
            states=[state.value for state in COUNTED_STATES],
            health=health,
            stats_ms=STATS_REFRESH_MS,
            health_ms=HEALTH_REFRESH_MS,
            minutes=THROUGHPUT_MINUTES,
        )

    async def queue(
        self,
        queue: QueueKey,
        auth: Manager,
        system: SystemDep,
        paging: PagingDep,
        state: JobState = JobState.WAITING,
        search: Annotated[str | None, Query(max_length=200)] = None,
    ) -> HTMLResponse:
        """A queue's jobs in one state, newest first, with search, paging and the bulk
        actions; the list is the one ``GET /api/queue/{queue}/jobs`` answers."""
        key = queue_key(system, queue)
        text = (search or "").strip()
        found = await service.find_jobs(
            system,
            key,
            state,
            auth.user,
            text=text or None,
            offset=paging.offset,
            limit=paging.limit,
        )
        base = f"{HOME_PATH}/{part(key)}"
        counts = await service.admin_for(system, auth.user).counts(key)
        return self.pages.render(
            "queue.html",
            auth=auth,
            title=f"{key} · {state.value}",
            section="queues",
            queue=key,
            description=system.catalogue[key].description,
            state=state.value,
            states=[s.value for s in COUNTED_STATES],
            counts={s.value: n for s, n in counts.items()},
            paused=await paused_note(system, key),
            clean_states=CLEAN_STATES,
            search=text,
            jobs=[job_summary(job, auth.user) for job in found.jobs],
            truncated=found.truncated,
            paging=_paging(base, {"state": state.value, "search": text}, paging, found.total),
            platform_admin=auth.user.role == Role.PLATFORM_ADMIN,
        )

    async def job(
        self,
        queue: QueueKey,
        job_id: JobId,
        auth: Manager,
        system: SystemDep,
        session: SessionDep,
    ) -> HTMLResponse:
        """One job in full, as ``GET /api/queue/{queue}/jobs/{id}`` gives it, with the
        actions its state allows, its company by name and its stack traces labelled
        by attempt."""
        key = queue_key(system, queue)
        record = await service.find_job(system, key, job_id, auth.user)
        if record is None:
            raise not_found()
        job = job_detail(record, auth.user)
        names = await company_names(session, [job.company_id] if job.company_id else [])
        return self.pages.render(
            "job.html",
            auth=auth,
            title=f"Job {job.id}",
            section="queues",
            queue=key,
            job=job,
            company_name=names.get(job.company_id or ""),
            traces=traces_by_attempt(job.stacktrace, job.attempts_made),
            can_retry=job.state is JobState.FAILED,
            can_promote=job.state is JobState.DELAYED,
            can_remove=job.state is not JobState.ACTIVE,
        )

    async def audit(
        self,
        auth: Manager,
        session: SessionDep,
        paging: PagingDep,
    ) -> HTMLResponse:
        """The audit log, newest first: a platform_admin reads every entry, others
        their company's (as ``GET /api/queue/audit``)."""
        rows, total = await service.visible_audit(session, auth.user, paging.limit, paging.offset)
        return self.pages.render(
            "audit.html",
            auth=auth,
            title="Audit log",
            section="audit",
            entries=[AuditOut.model_validate(row) for row in rows],
            paging=_paging("/admin/audit", {}, paging, total),
        )

    async def schedules(self, auth: Manager, session: SessionDep, state: StateDep) -> HTMLResponse:
        """The schedules ``GET /api/schedules`` lists for this admin (a platform_admin:
        all, platform ones included; others their company's), with next runs computed
        now, and the form to add one. Changes go through the API, which audits them."""
        user = auth.user
        platform_admin = user.role is Role.PLATFORM_ADMIN
        store = ScheduleStore()
        if platform_admin:
            found = await store.list(session, every_company=True)
        else:
            found = await store.list(session, user.company_id)
        now = now_utc(state.clock)
        schedules = [schedule_service.schedule_out(s, now) for s in found]
        names = await company_names(session, (s.company_id for s in schedules if s.company_id))
        choices = schedule_service.schedulable_for(user)
        params = {c.param.key: c.param for c in choices if c.param is not None}
        companies = await schedule_service.schedulable_companies(session) if platform_admin else []
        return self.pages.render(
            "schedules.html",
            auth=auth,
            title="Schedules",
            section="schedules",
            schedules=schedules,
            company_names=names,
            choices=[
                {
                    "key": c.key,
                    "label": c.label,
                    "job": json.dumps(c.as_json()),
                    "param": c.param.key if c.param else "",
                    "company": c.company,
                }
                for c in choices
            ],
            params=list(params.values()),
            companies=companies,
            own_company=auth.company.id,
            time_zone=auth.company.zone.key,
            platform_admin=platform_admin,
        )

    async def static(self, name: Annotated[str, Path(max_length=64)], request: Request) -> Response:
        """The script and the stylesheet, from the package: no CDN, nothing else."""
        return self.pages.asset(name, request)


def build_router() -> APIRouter:
    """The dashboard's routes (left out of the OpenAPI page: they answer HTML)."""
    pages = Pages()
    dashboard = Dashboard(pages)
    router = APIRouter(prefix="/admin", route_class=page_route(pages), include_in_schema=False)
    for path, endpoint in (
        ("/sign-in", dashboard.sign_in),
        ("/queues", dashboard.overview),
        ("/queues/{queue}", dashboard.queue),
        ("/queues/{queue}/jobs/{job_id}", dashboard.job),
        ("/audit", dashboard.audit),
        ("/schedules", dashboard.schedules),
    ):
        router.add_api_route(path, endpoint, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("", dashboard.home, methods=["GET"])
    router.add_api_route("/static/{name}", dashboard.static, methods=["GET"])
    # Issue 19, the workers page: imported here, as its module imports ``Manager`` above.
    from ils.web.dashboard.workers import WorkersPage

    router.add_api_route(
        "/workers", WorkersPage(pages).show, methods=["GET"], response_class=HTMLResponse
    )
    # Issue 19, the failure groups page: imported here, as its module imports ``Manager``.
    from ils.web.dashboard.failures import FailuresPage

    router.add_api_route(
        "/failures", FailuresPage(pages).page, methods=["GET"], response_class=HTMLResponse
    )
    return router


def build_landing_router() -> APIRouter:
    """``GET /`` (the landing page), outside ``/admin`` and the OpenAPI page."""
    from ils.web.dashboard.landing import LandingPage

    pages = Pages()
    router = APIRouter(route_class=page_route(pages), include_in_schema=False)
    router.add_api_route("/", LandingPage(pages).show, methods=["GET"], response_class=HTMLResponse)
    # issue 22: the pages behind the e-mails' links (ils.workers.email.links).
    from ils.web.dashboard.platform_pages import add_platform_routes

    add_platform_routes(router, pages)
    return router
