"""The dashboard's workers page (``/admin/workers``).

Why it is built this way:

* It shows what ``GET /api/queue/workers`` answers (both go through
  :func:`ils.web.services.workers.workers_for`), so the page and the API scope the
  same way: hosts and pids for platform_admins only, a company's admins see only
  their company's running jobs.
* Times read as "12 s ago" with the UTC time on hover (``<time title=...>``): how
  fresh a heartbeat is matters more at a glance than when it was. The strings are
  made here, at the request's "now", so the page needs no script.
* Each worker is a card, not a table row: a worker has a dozen facts and a list of
  jobs, which a card shows at 390 px without sideways scrolling.
* Its own module (the route is added in ``routes.build_router``) so ``routes`` stays
  the queue pages it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.responses import HTMLResponse

from ils.jobs.workers_view import LIVE_BEATS, RunningJobInfo, WorkerInfo
from ils.web.dashboard.pages import Pages, age, part, when
from ils.web.dashboard.routes import Manager
from ils.web.deps import SystemDep
from ils.web.services.queue_jobs import sees_all
from ils.web.services.workers import workers_for


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as the page shows it: relative text, the UTC time for the hover and the
    ``datetime`` attribute."""

    iso: str
    absolute: str
    relative: str


def moment(ms: int | None, now_ms: int) -> Moment | None:
    """``ms`` seen from ``now_ms``: ``12 s ago`` (``just now`` under a second)."""
    if ms is None:
        return None
    at = datetime.fromtimestamp(ms / 1000, UTC)
    seconds = (now_ms - ms) / 1000
    relative = "just now" if seconds < 1 else f"{age(seconds)} ago"
    return Moment(at.isoformat(), when(at), relative)


def job_card(job: RunningJobInfo, now_ms: int) -> dict[str, object]:
    """A running job as the page lists it, with the link to its job page."""
    return {
        "queue": job.queue,
        "job_id": job.job_id,
        "name": job.name,
        "store": job.store,
        "href": f"/admin/queues/{part(job.queue)}/jobs/{part(job.job_id)}",
        "started": moment(job.started_at_ms, now_ms),
    }


def worker_card(worker: WorkerInfo, now_ms: int) -> dict[str, object]:
    """A worker as its card shows it."""
    return {
        "id": worker.worker_id,
        "host": worker.host,
        "pid": worker.pid,
        "version": worker.version,
        "queues": [
            {"key": queue, "concurrency": worker.concurrency.get(queue)} for queue in worker.queues
        ],
        "slots": worker.slots,
        "running": [job_card(job, now_ms) for job in worker.running],
        "running_total": worker.running_total,
        "other_running": worker.other_running,
        "started": moment(worker.started_at_ms, now_ms),
        "seen": moment(worker.seen_at_ms, now_ms),
        "stopped": moment(worker.stopped_at_ms, now_ms),
        "gone": None if worker.gone is None else worker.gone.value,
        "jobs_done": worker.jobs_done,
        "jobs_failed": worker.jobs_failed,
    }


class WorkersPage:
    """The page handler, sharing the dashboard's :class:`Pages`."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def show(self, auth: Manager, system: SystemDep) -> HTMLResponse:
        """Live workers and the ones gone in the last hour, as of their heartbeats."""
        view = await workers_for(system, auth.user)
        now = view.now_ms
        return self.pages.render(
            "workers.html",
            auth=auth,
            title="Workers",
            section="workers",
            live=[worker_card(worker, now) for worker in view.live],
            gone=[worker_card(worker, now) for worker in view.recently_gone],
            heartbeat_s=view.heartbeat_s,
            live_window_s=LIVE_BEATS * view.heartbeat_s,
            as_of=moment(now, now),
            sees_hosts=sees_all(auth.user),
        )
