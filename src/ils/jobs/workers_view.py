"""The workers view: each worker process, live or recently gone, and what it runs.

Read from the heartbeat rows (``ils_workers``) that every worker process writes, in
both modes (every worker has the app database). It is the one read model of worker
processes: the workers API and page show it, and the health report counts its live
workers per queue and warns about its silent ones, so the two never disagree.

A worker is live when it beat within :data:`LIVE_BEATS` heartbeats and did not stop;
otherwise it is gone: ``stopped`` when it said so on a clean shutdown, ``silent`` when
its beats just ended (killed, crashed, cut off from the database). Gone workers stay
listed for an hour after their last beat, with what they were running then: the jobs a
silent worker held are the ones the stalled-job sweep will move back to waiting.

Everything here is as of each worker's last heartbeat (every ``worker_heartbeat_s``,
10 s by default), not of this instant: a job that started a moment ago shows at the
next beat. Writing on every start and end instead would put two database writes on
every job.

Who sees what (:meth:`WorkersView.for_company`): worker processes are the platform's
infrastructure, shared by every company. A platform_admin sees all of it. A company's
admins see the same processes, since whether workers are alive is what decides when
their jobs run, but without host names and process ids (the platform's machines are
not theirs to know), and of the running jobs only their own company's; the others are
a count, as the queue counts are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from ils.jobs.attempt import RunningJob
from ils.jobs.stores.local.store import LocalJobStore

#: A worker is live while its last beat is at most this many heartbeats old (the
#: health body's "workers connected" uses the same window).
LIVE_BEATS: Final = 3


class GoneReason(StrEnum):
    """Why a worker is no longer live."""

    STOPPED = "stopped"  # it shut down cleanly and said so
    SILENT = "silent"  # its heartbeats ended without a word: killed, crashed, cut off


#: A job a worker was running at its last heartbeat: read back as the same record its
#: consumer wrote into the heartbeat row, so the two cannot drift apart.
RunningJobInfo = RunningJob


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process as its heartbeat row describes it.

    ``host`` and ``pid`` are ``None`` for viewers who may not see them; ``running``
    holds the jobs the viewer may see, ``other_running`` how many more there are.
    """

    worker_id: str
    host: str | None
    pid: int | None
    version: str | None
    queues: tuple[str, ...]
    concurrency: Mapping[str, int]
    running: tuple[RunningJobInfo, ...]
    started_at_ms: int
    seen_at_ms: int
    jobs_done: int
    jobs_failed: int
    stopped_at_ms: int | None = None
    gone: GoneReason | None = None
    other_running: int = 0

    @property
    def live(self) -> bool:
        return self.gone is None

    @property
    def slots(self) -> int:
        """Jobs the process may run at once, over its queues."""
        return sum(self.concurrency.values())

    @property
    def running_total(self) -> int:
        """Every job it was running, seen or not."""
        return len(self.running) + self.other_running

    def seen_s_ago(self, now_ms: int) -> float:
        """Seconds since its last heartbeat (never negative across hosts' clocks)."""
        return max(now_ms - self.seen_at_ms, 0) / 1000


@dataclass(frozen=True, slots=True)
class WorkersView:
    """Live workers (first started first) and recently gone ones (last gone first)."""

    now_ms: int
    heartbeat_s: float
    live: tuple[WorkerInfo, ...] = field(default=())
    recently_gone: tuple[WorkerInfo, ...] = field(default=())

    def silent(self) -> tuple[WorkerInfo, ...]:
        """Gone workers that did not stop cleanly (the health report's stopped
        heartbeats), first started first."""
        gone = [worker for worker in self.recently_gone if worker.gone is GoneReason.SILENT]
        return tuple(sorted(gone, key=lambda worker: (worker.started_at_ms, worker.worker_id)))

    def live_on(self, queue: str) -> int:
        """How many live workers serve ``queue``."""
        return sum(1 for worker in self.live if queue in worker.queues)

    def for_company(self, company_id: str | None) -> WorkersView:
        """The view a viewer may see: ``None`` is the platform's (everything); a
        company's hides hosts and pids and every other company's running jobs."""
        if company_id is None:
            return self
        return replace(
            self,
            live=tuple(_scoped(worker, company_id) for worker in self.live),
            recently_gone=tuple(_scoped(worker, company_id) for worker in self.recently_gone),
        )


def _scoped(worker: WorkerInfo, company_id: str) -> WorkerInfo:
    mine = tuple(job for job in worker.running if job.company_id == company_id)
    return replace(
        worker,
        host=None,
        pid=None,
        running=mine,
        other_running=worker.other_running + len(worker.running) - len(mine),
    )


async def worker_processes(local: LocalJobStore, now_ms: int, heartbeat_s: float) -> WorkersView:
    """Every worker process seen in the last hour, sorted into live and gone.

    Raises :class:`~ils.errors.StoreUnavailableError` when the app database does not
    answer (there is nothing else to read workers from).
    """
    window_ms = int(LIVE_BEATS * heartbeat_s * 1000)
    live: list[WorkerInfo] = []
    gone: list[WorkerInfo] = []
    for row in await local.recent_workers():
        worker = worker_from_row(row, now_ms - window_ms)
        (live if worker.live else gone).append(worker)
    gone.sort(key=lambda w: (w.stopped_at_ms or w.seen_at_ms, w.worker_id), reverse=True)
    return WorkersView(now_ms, heartbeat_s, tuple(live), tuple(gone))


def worker_from_row(row: Mapping[str, Any], live_since_ms: int) -> WorkerInfo:
    """A heartbeat row as a :class:`WorkerInfo`; a row of a worker of the previous
    release (no details) reads as running nothing, with no counts."""
    stopped = _int_or_none(row.get("stopped_at_ms"))
    seen = int(row["seen_at_ms"])
    if stopped is not None:
        gone: GoneReason | None = GoneReason.STOPPED
    elif seen < live_since_ms:
        gone = GoneReason.SILENT
    else:
        gone = None
    concurrency = row.get("concurrency") or {}
    return WorkerInfo(
        worker_id=str(row["worker_id"]),
        host=str(row["host"]),
        pid=int(row["pid"]),
        version=row.get("version"),
        queues=tuple(str(queue) for queue in row.get("queues") or ()),
        concurrency={str(key): int(value) for key, value in concurrency.items()},
        running=tuple(_running(row.get("running") or ())),
        started_at_ms=int(row["started_at_ms"]),
        seen_at_ms=seen,
        jobs_done=int(row.get("jobs_done") or 0),
        jobs_failed=int(row.get("jobs_failed") or 0),
        stopped_at_ms=stopped,
        gone=gone,
    )


def _running(items: Sequence[Any]) -> list[RunningJobInfo]:
    """The running jobs of a row; an entry that is not a job is skipped."""
    found = []
    for item in items:
        if not isinstance(item, Mapping) or "job_id" not in item or "queue" not in item:
            continue
        found.append(
            RunningJobInfo(
                queue=str(item["queue"]),
                job_id=str(item["job_id"]),
                name=str(item.get("name") or ""),
                store=str(item.get("store") or "local"),
                started_at_ms=_int_or_none(item.get("started_at_ms")),
                company_id=None if item.get("company_id") is None else str(item["company_id"]),
            )
        )
    return found


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
