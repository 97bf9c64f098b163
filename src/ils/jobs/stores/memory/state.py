"""The data of the in-memory job store (``stores.memory``) and its pure rules.

``MemoryState`` plays the part the database plays for the local store: every
``MemoryJobStore`` given the same state sees the same jobs, pause flags and
rate-limit windows, as processes of one deployment share one database. A job is a
``MemoryJob``, the in-memory twin of an ``ils_jobs`` row (same fields, same stored
states), so the rules below read like the local store's SQL they mirror.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Any

from ils.jobs.catalogue import RateLimit, Retention
from ils.jobs.model import ClaimedJob, Fetch, JobRecord, JobState
from ils.jobs.stores.local.sql import ACTIVE, DELAYED, WAITING, QueueSwitches, record_from_row
from ils.jobs.stores.waiting import Wakeups

#: What records, health and the monitoring API call this store.
KIND = "memory"


def frozen(value: Any) -> str:
    """A JSON value as stored: its text, so a caller mutating what it passed in or
    got back never changes the store, and values come back as a database returns them
    (tuples as lists, keys as strings). Call after ``json_value`` has checked it."""
    return json.dumps(value, allow_nan=False)


@dataclass(slots=True)
class MemoryJob:
    """One job: the columns of ``ils_jobs`` (``local.sql.new_job_values`` makes them),
    with the JSON ones held as text (see ``frozen``) and the log lines inline."""

    seq: int
    id: str
    queue: str
    name: str
    data: str
    company_id: str | None
    state: str
    priority: int
    attempts: int
    attempts_made: int
    attempts_started: int
    stalled_count: int
    backoff_delay_ms: int
    delay_ms: int
    run_at_ms: int
    lock_token: str | None
    lock_until_ms: int | None
    progress: str
    result: str
    failed_reason: str | None
    stacktrace: list[str]
    created_at_ms: int
    processed_at_ms: int | None
    finished_at_ms: int | None
    logs: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Drop the worker's lock (the job finished, failed or stalled)."""
        self.lock_token = None
        self.lock_until_ms = None

    def record(self, paused: bool, *, with_logs: bool = False) -> JobRecord:
        """The job as callers see it; logs only for a single-job read, as stored."""
        logs = list(self.logs) if with_logs else None
        return record_from_row(self, paused, logs, store=KIND, load=json.loads)


@dataclass(slots=True)
class QueueData:
    """One queue's jobs by id and its switches (``ils_queue_state``).

    Ids map to jobs in insertion order, which is ``seq`` order: a removed id added
    again gets a new, larger ``seq`` and goes to the end, so iterating the dict is
    the FIFO tie-break without sorting.
    """

    jobs: dict[str, MemoryJob] = field(default_factory=dict)
    switches: QueueSwitches = field(default_factory=QueueSwitches)

    @property
    def paused(self) -> bool:
        return self.switches.paused

    def in_state(self, state: str) -> list[MemoryJob]:
        return [job for job in self.jobs.values() if job.state == state]

    def holding(self, job: ClaimedJob, now: int) -> MemoryJob | None:
        """The job if ``job.token`` holds an unexpired lock on it (``local.claim.HOLDING``:
        an expired lock is lost even before another worker takes the job)."""
        found = self.jobs.get(job.id)
        if (
            found is None
            or found.state != ACTIVE
            or found.lock_token != job.token
            or found.lock_until_ms is None
            or found.lock_until_ms < now
        ):
            return None
        return found

    def promote_due(self, now: int) -> None:
        """Delayed jobs whose time has come become waiting (their ``run_at_ms`` kept,
        so they queue by when they became due)."""
        for job in self.jobs.values():
            if job.state == DELAYED and job.run_at_ms <= now:
                job.state = WAITING
                job.delay_ms = 0

    def most_urgent(self) -> MemoryJob | None:
        """The waiting job served next: by ``(priority, run_at_ms, seq)``."""
        waiting = self.in_state(WAITING)
        return min(waiting, key=lambda j: (j.priority, j.run_at_ms, j.seq), default=None)

    def next_due_ms(self) -> int | None:
        """When the first delayed job comes due, ``None`` when none is delayed."""
        return min((job.run_at_ms for job in self.in_state(DELAYED)), default=None)

    def nothing(self, now: int) -> Fetch:
        """No job (``local.claim._nothing``): wait for work when paused or empty, else
        until the next delayed job is due."""
        due = None if self.paused else self.next_due_ms()
        return Fetch(None, wait_ms=0 if due is None else max(due - now, 1))

    def ready_in_s(self, now: int) -> float | None:
        """Seconds until a job can be claimed: 0 now, ``None`` not known."""
        if self.paused:
            return None
        if self.in_state(WAITING):
            return 0
        due = self.next_due_ms()
        return None if due is None else max(due - now, 0) / 1000

    def count_start(self, limit: RateLimit, now: int) -> None:
        """Count a start in the rate-limit window, opening a new window when the last
        one ended or was empty (BullMQ's fixed window, as ``local.claim`` counts)."""
        old = self.switches
        if now >= old.window_start_ms + limit.duration_ms or old.window_count == 0:
            self.switches = replace(old, window_start_ms=now, window_count=1)
        else:
            self.switches = replace(old, window_count=old.window_count + 1)

    def prune(self, state: str, keep: Retention, now: int) -> None:
        """Retention (``local.claim.prune``): finished jobs of ``state`` at or past the
        age go, and only the newest ``keep.count`` stay. Exact on every finish: the
        local store spreads its count delete over finishes only to save statements."""
        cutoff = now - keep.age_s * 1000
        finished = self.in_state(state)
        doomed = {job.id for job in finished if (job.finished_at_ms or 0) <= cutoff}
        if len(finished) > keep.count:
            newest = sorted(finished, key=lambda j: (j.finished_at_ms or 0, j.seq), reverse=True)
            doomed.update(job.id for job in newest[keep.count :])
        for job_id in doomed:
            del self.jobs[job_id]


def newest_first(jobs: list[MemoryJob], state: JobState) -> list[MemoryJob]:
    """The order of every job list (``local.admin.newest_first``): finished jobs newest
    finished first, the others newest created first."""
    if state in (JobState.COMPLETED, JobState.FAILED):
        return sorted(jobs, key=lambda j: (j.finished_at_ms or 0, j.seq), reverse=True)
    return sorted(jobs, key=lambda j: (j.created_at_ms, j.seq), reverse=True)


class MemoryState(Wakeups):
    """What every ``MemoryJobStore`` sharing it sees: jobs, switches and wake-ups (its
    ``wakeup``, ``notify`` and ``notify_all``, those of every waiting store).

    One event loop only: the stores change it without locks, which is safe because
    each operation runs to its end without awaiting, and the wake-ups are
    ``asyncio.Event`` objects of that loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[str, QueueData] = {}
        self._seq = itertools.count(1)

    def queue(self, key: str) -> QueueData:
        """The data of queue ``key``, created empty on first use."""
        found = self._queues.get(key)
        if found is None:
            found = self._queues[key] = QueueData()
        return found

    def next_seq(self) -> int:
        """The next job sequence number: FIFO order across every queue."""
        return next(self._seq)

    def job_count(self) -> int:
        return sum(len(queue.jobs) for queue in self._queues.values())
