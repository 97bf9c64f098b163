"""The API routers, all included by :func:`include_routers` (called by ``create_app``).

Adding a router: write ``routers/<area>.py`` with ``router = APIRouter(prefix="/api/<area>",
tags=["<area>"])``, import it here, add it to ``include_routers``'s tuple below and, for
the OpenAPI page, a tag to ``OPENAPI_TAGS``. Nothing else needs to know about it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ils.web.dashboard.routes import build_landing_router
from ils.web.dashboard.routes import build_router as build_dashboard_router
from ils.web.routers import (
    ai,
    auth,
    billing,
    clinical,
    documents,
    failures,
    latency,
    mail,
    marketplace,
    metrics,
    notifications,
    orders,
    probes,
    purchasing,
    queue_jobs,
    queues,
    schedules,
    tracing,
    workers,
)

#: Tag descriptions shown on ``/docs``, in display order.
OPENAPI_TAGS: tuple[dict[str, Any], ...] = (
    {"name": "auth", "description": "Sign in and out; who is signed in."},
    # --- API routers (issue 3): add their tags here ---
    {"name": "orders", "description": "Lens orders from practices to labs, their lifecycle."},
    {"name": "billing", "description": "Labs' invoices to practices, VAT totals, payments."},
    {"name": "clinical", "description": "A practice's patients and eye examinations."},
    {"name": "purchasing", "description": "Labs' purchase orders to suppliers."},
    {"name": "marketplace", "description": "Connections between practices, labs, suppliers."},
    {"name": "documents", "description": "Generated PDFs: download, versions of a subject."},
    {"name": "mail", "description": "The sent-mail log of the e-mail worker (admins)."},
    {"name": "notifications", "description": "My in-app notifications, and their live stream."},
    {"name": "tracing", "description": "Lens-tracing files (OMA/VCA) of an order."},
    {"name": "ai", "description": "AI briefings, forecasts, anomalies, insights and chat."},
    {"name": "queues", "description": "Queue monitoring: stats, health, options (admins)."},
    {"name": "schedules", "description": "Jobs on a calendar, per company time zone (admins)."},
)


def include_routers(app: FastAPI) -> None:
    """Mount every router on ``app``, in this order (the order of ``/docs``)."""
    api = (
        auth,
        # --- API routers (issue 3): include them here ---
        orders,
        billing,
        clinical,
        purchasing,
        marketplace,
        mail,
        documents,
        notifications,
        ai,
        tracing,
        queues,
        latency,  # issue 19: wait and run time charts
        queue_jobs,
        failures,  # issue 19: failure groups
        workers,  # issue 19: the workers view
        schedules,
        metrics,
        probes,
    )
    for module in api:
        app.include_router(module.router)
    app.include_router(build_dashboard_router())
    app.include_router(build_landing_router())
