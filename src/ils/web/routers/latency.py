"""The latency API: ``GET /api/queue/{queue}/latency?window=hour|day``.

Who may: platform_admin, admin and company_admin (401 without a session, 403 for the
other roles), as for the throughput chart beside it (``routers/queues.py``): the
figures are of the whole queue, they say how busy the system is and name no
company's jobs. The body is :func:`ils.jobs.latency.queue_latency` over the stores
the monitor can reach now, so in Redis mode jobs the local store ran during an
outage count too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ils.jobs.latency import LatencyWindow, queue_latency
from ils.web.deps import ManagerUser, SystemDep, queue_key
from ils.web.schemas.common import error_responses
from ils.web.schemas.latency import LatencyOut

router = APIRouter(prefix="/api/queue", tags=["queues"])


@router.get(
    "/{queue}/latency",
    summary="Wait and run time p50 and p95 per minute (hour) or 15 minutes (day)",
    responses=error_responses(401, 403, 404),
)
async def latency(
    queue: Annotated[str, Path(max_length=64)],
    user: ManagerUser,
    system: SystemDep,
    window: LatencyWindow = LatencyWindow.HOUR,
) -> LatencyOut:
    """Per bucket, oldest first: the jobs that finished, and p50 and p95 of their wait
    (from when they became due to their start) and run time (start to finish), from
    the finished jobs the stores keep. A busy bucket is measured on a sample of 100
    jobs per store; a retried job counts in run time only."""
    key = queue_key(system, queue)
    found = await queue_latency(system.monitor.reachable_stores(), key, window, system.clock)
    return LatencyOut.of(found)
