"""``GET /metrics``: the job system's Prometheus metrics (see ``ils.jobs.metrics``).

Unauthenticated, as Prometheus scrapes it: it holds counts and timings only, no ids
or payloads. Expose it to your monitoring network, not the internet (a reverse
proxy rule).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ils.jobs.metrics import CONTENT_TYPE
from ils.web.deps import SystemDep

router = APIRouter(tags=["queues"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(system: SystemDep) -> Response:
    """Jobs by queue and state, completed and failed totals, processing-time and
    enqueue-to-start histograms, and whether the Redis fallback is in use."""
    await system.metrics.refresh(system.monitor)
    return Response(system.metrics.render(), media_type=CONTENT_TYPE)
