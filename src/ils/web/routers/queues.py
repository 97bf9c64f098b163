"""The queue monitoring API of jobs.md: ``/api/queue/stats``, ``/health``, ``/info``.

Who may: platform_admin, admin and company_admin (401 without a session, 403 for the
other roles). The bodies are the job system's own (``JobMonitor.stats`` and
``JobMonitor.health``), so ``ils jobs stats`` and this API cannot disagree. Counts
are of the whole queue: they say how busy the system is and name no company's jobs.
The health report's infrastructure (store locations, worker hosts and pids, problem
details) is the platform_admin's only (:func:`ils.web.disclosure.health_for`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ils.jobs.catalogue import QueueConfig
from ils.web.deps import ManagerUser, SystemDep, queue_key
from ils.web.disclosure import health_for
from ils.web.schemas.common import error_responses

router = APIRouter(prefix="/api/queue", tags=["queues"])


def queue_info(config: QueueConfig) -> dict[str, Any]:
    """A queue's options as configured (catalogue defaults plus ``ILS_QUEUES``)."""
    limit = config.rate_limit
    return {
        "name": config.name,
        "description": config.description,
        "concurrency": config.concurrency,
        "rate_limit": None
        if limit is None
        else {"max": limit.max, "duration_ms": limit.duration_ms},
        "attempts": config.attempts,
        "backoff": {"type": "exponential", "delay_ms": config.backoff_delay_ms},
        "lock_duration_ms": config.lock_duration_ms,
        "retention": {
            "completed": {
                "age_s": config.keep_completed.age_s,
                "count": config.keep_completed.count,
            },
            "failed": {"age_s": config.keep_failed.age_s, "count": config.keep_failed.count},
        },
    }


@router.get(
    "/{queue}/throughput",
    summary="Completed and failed jobs per minute, last hour",
    responses=error_responses(401, 403, 404),
)
async def throughput(
    queue: Annotated[str, Path(max_length=64)],
    user: ManagerUser,
    system: SystemDep,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
) -> dict[str, Any]:
    """For the dashboard's charts: one point per minute, oldest first, counted from
    the finished jobs the stores keep (retention: 1,000 completed per queue by
    default, so a busier queue's older minutes undercount)."""
    key = queue_key(system, queue)
    points = await system.monitor.throughput(key, minutes=minutes)
    return {
        "queue": key,
        "bucket_s": 60,
        "points": [
            {
                "at": datetime.fromtimestamp(point["minute_ms"] / 1000, UTC).isoformat(),
                "completed": point["completed"],
                "failed": point["failed"],
            }
            for point in points
        ],
    }


@router.get("/stats", summary="Counts of every queue by state", responses=error_responses(401, 403))
async def stats(user: ManagerUser, system: SystemDep) -> dict[str, Any]:
    """``{"redis": bool, "mode": "redis"|"local", "<queue>": {"waiting": n, ...}, ...}``."""
    return await system.monitor.stats()


@router.get(
    "/health", summary="Overall status and what it rests on", responses=error_responses(401, 403)
)
async def health(user: ManagerUser, system: SystemDep) -> dict[str, Any]:
    """``status`` is ``ok``, ``degraded`` (Redis configured but unreachable: jobs go to
    the local store) or ``down``; then each store's reachability and latency, Redis's
    eviction policy and memory, each queue's counts and oldest waiting job's age.
    Where the stores and workers are (paths, hosts, ports, pids) only for a
    platform_admin."""
    return health_for(await system.monitor.health(), user)


@router.get(
    "/info", summary="Each queue's options, health and stats", responses=error_responses(401, 403)
)
async def info(user: ManagerUser, system: SystemDep) -> dict[str, Any]:
    """Per queue: description, concurrency, rate limit, attempts, back-off, retention;
    plus the health and stats bodies."""
    return {
        "queues": {key: queue_info(config) for key, config in system.catalogue.items()},
        "health": health_for(await system.monitor.health(), user),
        "stats": await system.monitor.stats(),
    }
