"""The rules of the health report: which facts are problems, how grave, in what words.

The monitor (:mod:`ils.jobs.monitor`) gathers the facts (stores, queues, workers); the
rules here turn them into problems, each with a severity (``critical`` or
``warning``), a stable ``code`` for alerting, the queue it concerns and one sentence
an operator can act on. They are plain functions of the facts so each rule is
tested on its own, and the API, the dashboard and ``/metrics`` all show the same list.

Why these rules: what operators of BullMQ, Oban, Sidekiq and Celery ask first is
whether anything is stuck. A queue with waiting jobs and no live worker is stuck
whatever the stores say, and so is a paused queue; a queue whose oldest waiting job
is older than its limit is falling behind; a failure rate above the threshold means
jobs are failing as they run; a worker whose heartbeat stopped (it did not say
goodbye) may have died holding jobs, which come back after their lock expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ils.settings import HealthSettings

Severity = Literal["critical", "warning"]
Status = Literal["ok", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, said once.

    ``message`` is the sentence anyone allowed to read the report may see; ``detail``
    holds the internals behind it (hosts, paths, pids) that only the platform's own
    operators get, so the web layer drops one field instead of rewriting sentences.
    """

    severity: Severity
    code: str
    message: str
    queue: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "queue": self.queue,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """What the stores and heartbeats say about one queue now.

    ``ready`` counts the jobs a worker could start now (waiting and prioritized, not
    delayed ones); ``None`` fields are facts that could not be read.
    """

    key: str
    ready: int | None
    paused: bool
    oldest_waiting_age_s: float | None
    live_workers: int
    completed_recently: int
    failed_recently: int
    max_wait_s: int


def queue_problems(facts: QueueFacts, rules: HealthSettings) -> list[Problem]:
    """The problems of one queue (see the module docstring for why each)."""
    problems: list[Problem] = []
    key = facts.key
    waiting = facts.ready or 0
    if facts.paused:
        problems.append(
            Problem(
                "warning",
                "queue_paused",
                f"Queue {key} is paused: {waiting} job(s) wait and none start until it is resumed.",
                key,
            )
        )
    elif waiting and facts.live_workers == 0:
        problems.append(
            Problem(
                "critical",
                "queue_without_worker",
                f"Queue {key} has {waiting} waiting job(s) and no live worker: start "
                f"`ils worker --queues {key}` (or `ils serve` with workers).",
                key,
            )
        )
    age = facts.oldest_waiting_age_s
    if not facts.paused and age is not None and age > facts.max_wait_s:
        problems.append(
            Problem(
                "warning",
                "queue_falling_behind",
                f"Queue {key}'s oldest waiting job has waited {_duration(age)}, longer than "
                f"its limit of {_duration(facts.max_wait_s)}.",
                key,
            )
        )
    finished = facts.completed_recently + facts.failed_recently
    failed = facts.failed_recently
    if failed >= rules.failure_min_jobs and failed > rules.failure_rate * finished:
        problems.append(
            Problem(
                "warning",
                "queue_failure_rate",
                f"Queue {key}: {failed} of {finished} jobs finished in the last "
                f"{_duration(rules.failure_window_s)} failed "
                f"({100 * failed / finished:.0f} %, above {100 * rules.failure_rate:.0f} %).",
                key,
            )
        )
    return problems


def stopped_worker_problems(stale: Sequence[tuple[str, str, float]]) -> list[Problem]:
    """Workers whose heartbeat stopped without a clean stop: ``(id, host, s since seen)``."""
    return [
        Problem(
            "warning",
            "worker_heartbeat_stopped",
            f"Worker {worker_id} stopped sending heartbeats {_duration(ago)} ago "
            "without stopping cleanly; jobs it held return to waiting when their locks expire.",
            detail=f"It ran on host {host}.",
        )
        for worker_id, host, ago in stale
    ]


def overall_status(problems: Sequence[Problem], *, can_take_jobs: bool) -> Status:
    """``down``: no store takes jobs; ``degraded``: any problem; else ``ok``."""
    if not can_take_jobs:
        return "down"
    return "degraded" if problems else "ok"


def ordered(problems: Sequence[Problem]) -> list[Problem]:
    """Critical problems first, then by queue, keeping each group's order."""
    rank = {"critical": 0, "warning": 1}
    return sorted(problems, key=lambda p: (rank[p.severity], p.queue or ""))


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h``: the unit an operator reads at a glance."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3_600:.1f} h"
