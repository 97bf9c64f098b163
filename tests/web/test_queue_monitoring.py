"""``/api/queue/stats``, ``/health`` and ``/info`` (jobs.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.jobs.job_types import OrderConfirmationEmail, OrderSheetPdf
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_process import run_workers
from ils.testing import eventually
from ils.web.state import WebState
from tests.web.conftest import SignedIn

QUEUES = ("email", "pdf", "notification", "ai", "oma", "scheduled")
STATES = {"waiting", "active", "completed", "failed", "delayed", "paused"}
PATHS = ("/api/queue/stats", "/api/queue/health", "/api/queue/info")


async def test_401_without_a_session_403_for_staff_and_lab_techs(
    client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    for path in PATHS:
        assert (await client.get(path)).status_code == 401
    for role, kind in ((Role.STAFF, CompanyKind.PRACTICE), (Role.LAB_TECH, CompanyKind.LAB)):
        user_client, _ = await signed_in(role, kind)
        for path in PATHS:
            response = await user_client.get(path)
            assert response.status_code == 403, (role, path)


async def test_stats_count_what_was_queued_for_every_admin_role(
    signed_in: SignedIn, state: WebState
) -> None:
    helpers = state.system.helpers
    await helpers.queue_order_sheet_pdf("order-1")
    await helpers.queue_order_sheet_pdf("order-2")
    await helpers.queue_system_notification("user-1", "Hello", "World", "urgent")
    for role in (Role.PLATFORM_ADMIN, Role.ADMIN, Role.COMPANY_ADMIN):
        admin, _ = await signed_in(role, CompanyKind.LAB)
        response = await admin.get("/api/queue/stats")
        assert response.status_code == 200
        body = response.json()
        assert (body["redis"], body["mode"]) == (False, "local")
        assert set(body) == {"redis", "mode", *QUEUES}
        assert all(set(body[queue]) == STATES for queue in QUEUES)
        assert body["pdf"]["waiting"] == 2
        assert body["notification"]["waiting"] == 1
        assert body["email"]["waiting"] == 0


async def test_health_and_info(signed_in: SignedIn, state: WebState) -> None:
    await state.system.helpers.queue_invoice_pdf("invoice-1")
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    health = (await admin.get("/api/queue/health")).json()
    # A waiting job and no worker for its queue: stuck, whatever the stores say.
    assert health["status"] == "degraded"
    assert [(p["code"], p["queue"]) for p in health["problems"]] == [
        ("queue_without_worker", "pdf")
    ]
    now = state.system.clock.now_ms()
    await state.system.local.record_worker("w-1", "host-1", 4242, ["pdf"], now)
    health = (await admin.get("/api/queue/health")).json()
    assert health["status"] == "ok", health["problems"]
    assert health["stores"]["local"]["reachable"] is True
    assert health["queues"]["pdf"]["counts"]["waiting"] == 1
    assert health["queues"]["pdf"]["oldest_waiting_age_s"] >= 0
    assert health["queues"]["email"]["oldest_waiting_age_s"] is None

    info = (await admin.get("/api/queue/info")).json()
    assert set(info["queues"]) == set(QUEUES)
    email = info["queues"]["email"]
    assert email["name"] == "emails"
    assert email["concurrency"] == 5
    assert email["rate_limit"] == {"max": 100, "duration_ms": 60_000}
    assert email["attempts"] == 3
    assert email["backoff"] == {"type": "exponential", "delay_ms": 5_000}
    assert email["retention"]["completed"] == {"age_s": 86_400, "count": 1_000}
    assert email["retention"]["failed"] == {"age_s": 7 * 86_400, "count": 5_000}
    assert info["queues"]["oma"]["rate_limit"] is None
    assert info["queues"]["scheduled"]["retention"]["completed"] == {
        "age_s": 7 * 86_400,
        "count": 100,
    }
    assert info["stats"]["pdf"]["waiting"] == 1
    assert info["health"]["status"] == "ok"


async def test_throughput_counts_finished_jobs_per_minute(
    signed_in: SignedIn, state: WebState
) -> None:
    system = state.system
    for n in range(3):
        await system.helpers.queue_order_sheet_pdf(f"order-{n}")
    store = system.local
    for outcome in ("done", "done", "failed"):
        fetched = await store.fetch("pdf", f"token-{outcome}")
        assert fetched.job is not None
        if outcome == "done":
            await store.complete("pdf", fetched.job, None, fetch_next=False)
        else:
            await store.fail("pdf", fetched.job, "broken", None, retry=False)
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    response = await admin.get("/api/queue/pdf/throughput")
    assert response.status_code == 200
    body = response.json()
    assert (body["queue"], body["bucket_s"]) == ("pdf", 60)
    points = body["points"]
    assert len(points) == 60
    assert points == sorted(points, key=lambda point: point["at"])
    assert sum(point["completed"] for point in points) == 2
    assert sum(point["failed"] for point in points) == 1
    assert points[-1]["completed"] + points[-2]["completed"] == 2  # this minute (or the last)
    short = await admin.get("/api/queue/email/throughput?minutes=5")
    assert [p["completed"] for p in short.json()["points"]] == [0] * 5
    assert (await admin.get("/api/queue/sms/throughput")).status_code == 404
    staff, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    assert (await staff.get("/api/queue/pdf/throughput")).status_code == 403


async def test_health_counts_connected_workers_per_queue(
    signed_in: SignedIn, state: WebState
) -> None:
    system = state.system
    registry = HandlerRegistry(system.job_types)

    async def noop(payload: Any, ctx: Any) -> None:
        return None

    registry.register(OrderSheetPdf, noop)
    registry.register(OrderConfirmationEmail, noop)
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(system, ["pdf", "email"], registry, stop=stop))
    # The platform admin: only they see where workers run (host and pid).
    admin, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    health: dict[str, Any] = {}

    async def worker_connected() -> bool:
        health.update((await admin.get("/api/queue/health")).json())
        return bool(health["workers"])

    try:
        await eventually(
            worker_connected,
            4.0,
            interval=0.02,
            message=lambda: f"no worker in /api/queue/health within 4 s: {health}",
        )
        (worker,) = health["workers"]
        assert sorted(worker["queues"]) == ["email", "pdf"]
        assert worker["pid"] == os.getpid() and worker["host"]
        assert health["queues"]["pdf"]["workers"] == 1
        assert health["queues"]["email"]["workers"] == 1
        assert health["queues"]["ai"]["workers"] == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    # A worker that stopped cleanly is gone at once.
    health = (await admin.get("/api/queue/health")).json()
    assert health["workers"] == []
    assert health["queues"]["pdf"]["workers"] == 0
