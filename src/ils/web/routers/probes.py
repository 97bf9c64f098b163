"""Liveness and readiness for load balancers and orchestrators: no session, no details.

* ``GET /healthz/live``: the process answers (its event loop turns). Restart the
  process when this fails, never because a dependency is down: restarting a web
  server because Redis is away fixes nothing and drops every request in flight.
* ``GET /healthz/ready``: this process can serve now: the app database answers and
  some store can take jobs (the local store always can while the database answers;
  Redis mode falls back to it). 503 otherwise, so the balancer sends requests to
  another instance.

The bodies say only ``alive`` / ``ready`` / ``not ready``: they are public, and the
full report with its reasons is ``/api/queue/health`` (managers only).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ils.web.deps import SystemDep

router = APIRouter(prefix="/healthz", tags=["probes"])


@router.get("/live", summary="The process answers")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/ready",
    summary="The process can serve requests and take jobs",
    responses={503: {"description": "Not ready: the app database does not answer"}},
)
async def ready(system: SystemDep) -> JSONResponse:
    health = await system.local.health()
    if health.reachable:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready"}, status_code=503)
