"""What of the platform's infrastructure a viewer may see: one function per view.

Why: the monitoring views are shared by the platform's operators and by every
company's admins, a supplier's included. File paths, database hosts, ports and
names, worker hosts and pids, and stack traces with the server's paths help the
platform admin fix a fault, and would only help anyone else map the servers. So the
platform admin sees every view in full and everyone else gets the same sentences
without the internals: which store is down, that a worker went silent, why a job
failed, but not where.

Each view is redacted here, once, from the viewer: the API routes and the dashboard
pages call the same function, so a page cannot show what its API hides. Health
problems carry their internals in a separate ``detail`` (:class:`ils.jobs.health.Problem`),
which is dropped whole; only texts the job system does not write itself (exception
messages of failed jobs, handlers' log lines) are scrubbed by pattern.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from ils.domain.companies import Role, User
from ils.jobs.failures import FailureReport
from ils.jobs.model import JobRecord
from ils.web.schemas.failures import FailureGroupsOut
from ils.web.schemas.queues import JobDetailOut, JobSummaryOut

#: The facts of a store a company admin may read: whether it answers and how it copes,
#: not where it is (the local store's file or host, port and database; Redis's key
#: prefix and version).
PUBLIC_STORE_FACTS: Final = frozenset(
    {
        "reachable",
        "latency_ms",
        "dialect",
        "used_memory_human",
        "maxmemory",
        "maxmemory_policy",
        "eviction_safe",
    }
)
#: A worker's facts that say where it runs.
WORKER_INTERNALS: Final = ("host", "pid")
#: Put in place of what was scrubbed from a text.
HIDDEN: Final = "<hidden>"
#: Absolute paths, quoted (may hold spaces) or bare (POSIX with two or more parts,
#: Windows with a drive letter); a bare one must not follow a word, ``/`` or ``:`` so
#: URLs and relative keys (``documents/o-1.pdf``) are left alone.
QUOTED_PATH: Final = re.compile(r"""(['"])(?:/|[A-Za-z]:\\)[^'"\n]*\1""")
BARE_PATH: Final = re.compile(r"(?<![\w/.:\\])(?:/[\w.@+~-]+){2,}/?|\b[A-Za-z]:\\[^\s'\"]+")
#: Network addresses: IPv4 (with any port) and ``host:port``.
ADDRESS: Final = re.compile(
    r"\b(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?|[A-Za-z][\w-]*(?:\.[\w-]+)*:\d{2,5})\b"
)


def sees_infrastructure(user: User) -> bool:
    """Whether ``user`` runs the platform (and so may see where it runs)."""
    return user.role is Role.PLATFORM_ADMIN


def public_text(text: str) -> str:
    """``text`` without file paths and network addresses (see the patterns above)."""
    text = QUOTED_PATH.sub(lambda match: f"{match.group(1)}{HIDDEN}{match.group(1)}", text)
    text = BARE_PATH.sub(HIDDEN, text)
    return ADDRESS.sub(HIDDEN, text)


# -- the health report (``/api/queue/health``, ``/info`` and the dashboard's panel) -----


def health_for(report: dict[str, Any], user: User) -> dict[str, Any]:
    """The health report as ``user`` may read it: a company admin gets every status,
    count and problem sentence, without the stores' locations and errors, problem
    details, worker hosts and pids, or the fall-back's raw reason."""
    if sees_infrastructure(user):
        return report
    public = dict(report)
    public["stores"] = {
        name: _public_store(name, facts) for name, facts in report.get("stores", {}).items()
    }
    public["problems"] = [{**problem, "detail": None} for problem in report.get("problems", [])]
    public["workers"] = [
        {**worker, **dict.fromkeys(WORKER_INTERNALS)} for worker in report.get("workers", [])
    ]
    fallback = report.get("fallback")
    if fallback is not None and fallback.get("reason"):
        public["fallback"] = {**fallback, "reason": "Redis is not in use: see the problems."}
    return public


def _public_store(name: str, facts: dict[str, Any]) -> dict[str, Any]:
    public = {key: value for key, value in facts.items() if key in PUBLIC_STORE_FACTS}
    # A driver's error names the server it failed to reach: say only that it failed.
    what = "Redis" if name == "redis" else "The app database"
    public["error"] = f"{what} does not answer." if facts.get("error") else None
    return public


# -- job pages (the API's job bodies, the dashboard's job and queue pages) -------------


def job_for(job: JobRecord, user: User) -> JobRecord:
    """``job`` as ``user`` may read it: for a company admin, no stack traces, and the
    failure reason and log lines without paths and addresses."""
    if sees_infrastructure(user):
        return job
    return replace(
        job,
        failed_reason=None if job.failed_reason is None else public_text(job.failed_reason),
        stacktrace=[],
        logs=[public_text(line) for line in job.logs],
    )


def job_detail(job: JobRecord, user: User) -> JobDetailOut:
    """One job in full, as ``user`` may read it."""
    return JobDetailOut.of(job_for(job, user))


def job_summary(job: JobRecord, user: User) -> JobSummaryOut:
    """A job in a list, as ``user`` may read it."""
    return JobSummaryOut.of(job_for(job, user))


def failures_for(report: FailureReport, user: User) -> FailureGroupsOut:
    """The failure groups as ``user`` may read them: for a company admin, no sample
    stack traces, and the groups' messages without paths and addresses."""
    if sees_infrastructure(user):
        return FailureGroupsOut.of(report)
    groups = [
        replace(group, message=public_text(group.message), sample_stacktrace=None)
        for group in report.groups
    ]
    return FailureGroupsOut.of(replace(report, groups=groups))
