"""Infrastructure (paths, hosts, ports, database names, pids, stack traces) is for the
platform admin only, on SQLite and PostgreSQL: a company's admins get the same
sentences without the internals, in the health report (API and dashboard), the
workers view and the job pages (API and dashboard).

Why each fact counts as infrastructure: a database file path or a PostgreSQL
host, port and name, a worker's host and pid, and a stack trace with the server's
paths help an attacker map the platform and help no company admin act.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from ils.domain.companies import Company, CompanyKind, Role, User
from ils.jobs.job_types import OrderSheetPdf
from ils.jobs.model import JobOptions, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.testing import eventually
from ils.web.disclosure import health_for
from ils.web.state import WebState
from tests.conftest import free_port
from tests.web.conftest import SECRET_KEY, Factory, SignedIn, TestClock

SERVER_PATH = "/srv/ils-secret-tree/var/documents"
DEAD_HOST = "dead-host-7"
LIVE_HOST = "live-host-3"
LIVE_PID = 48_213


def _database_internals(state: WebState) -> list[str]:
    """The database's own location: a file path, or host, port and name."""
    url = make_url(state.settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        return [url.database]
    return [str(url.host), f'"port":{url.port}', f'"database":"{url.database}"']


async def _two_workers(state: WebState, clock: TestClock, company: Company) -> None:
    """One worker whose heartbeat stopped (a health problem) and one live one."""
    local = state.system.local
    await local.record_worker("w-dead", DEAD_HOST, 97, ["email"], clock.now_ms())
    clock.advance(31_000)  # three missed heartbeats of 10 s, no clean stop
    await local.record_worker("w-live", LIVE_HOST, LIVE_PID, ["pdf"], clock.now_ms())


async def _failed_job(state: WebState, company: Company) -> str:
    """A pdf job of ``company`` failed by an error that names a server path."""

    async def broken(payload: Any, ctx: Any) -> None:
        raise FileNotFoundError(2, "No such file or directory", f"{SERVER_PATH}/o-1.pdf")

    system = state.system
    ref = await system.producer.enqueue(
        "pdf",
        "order-sheet",
        OrderSheetPdf.model_validate({"order_id": "o-1"}),
        JobOptions(company_id=company.id, attempts=1),
    )
    registry = HandlerRegistry(system.job_types)
    registry.register(OrderSheetPdf, broken)
    runner = Runner(system.stores(), [system.catalogue["pdf"]], registry)
    runner.start()
    try:

        async def failed() -> bool:
            job = await system.local.get_job("pdf", ref.job_id)
            return job is not None and job.state is JobState.FAILED

        await eventually(failed)
    finally:
        await runner.stop(5)
    return ref.job_id


async def _viewers(
    signed_in: SignedIn, factory: Factory, company: Company
) -> tuple[httpx.AsyncClient, list[httpx.AsyncClient]]:
    """The platform admin, and a company's admins (the job's company and a supplier)."""
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB, company=company)
    supplier = await factory.company(CompanyKind.SUPPLIER)
    supplier_admin, _ = await signed_in(Role.COMPANY_ADMIN, company=supplier)
    return platform, [admin, supplier_admin]


async def test_health_internals_only_for_the_platform_admin(
    signed_in: SignedIn, factory: Factory, state: WebState, clock: TestClock
) -> None:
    company = await factory.company(CompanyKind.LAB)
    await _two_workers(state, clock, company)
    platform, others = await _viewers(signed_in, factory, company)
    internals = _database_internals(state)

    full = await platform.get("/api/queue/health")
    assert full.status_code == 200
    for text in internals:
        assert text in full.text.replace(" ", ""), text
    (problem,) = full.json()["problems"]
    assert problem["code"] == "worker_heartbeat_stopped"
    assert DEAD_HOST in problem["detail"]
    assert DEAD_HOST not in problem["message"]
    (live,) = full.json()["workers"]
    assert (live["host"], live["pid"]) == (LIVE_HOST, LIVE_PID)

    for viewer in others:
        for path in ("/api/queue/health", "/api/queue/info"):
            response = await viewer.get(path)
            assert response.status_code == 200
            for text in [*internals, DEAD_HOST, LIVE_HOST, str(LIVE_PID)]:
                assert text not in response.text.replace(" ", ""), (path, text)
        body = (await viewer.get("/api/queue/health")).json()
        # The sentence stays: what is wrong, without where.
        (problem,) = body["problems"]
        assert problem["code"] == "worker_heartbeat_stopped"
        assert "stopped sending heartbeats" in problem["message"]
        assert problem["detail"] is None
        assert body["status"] == "degraded"
        assert body["stores"]["local"]["reachable"] is True
        (worker,) = body["workers"]
        assert worker == live | {"host": None, "pid": None, "seen_s_ago": worker["seen_s_ago"]}

    page = await platform.get("/admin/queues")
    assert DEAD_HOST in page.text
    for viewer in others:
        page = await viewer.get("/admin/queues")
        assert page.status_code == 200
        assert "stopped sending heartbeats" in page.text
        for text in [*internals, DEAD_HOST, LIVE_HOST]:
            assert text not in page.text, text


async def test_workers_view_hides_hosts_and_pids_from_company_admins(
    signed_in: SignedIn, factory: Factory, state: WebState, clock: TestClock
) -> None:
    company = await factory.company(CompanyKind.LAB)
    await _two_workers(state, clock, company)
    platform, others = await _viewers(signed_in, factory, company)
    full = (await platform.get("/api/queue/workers")).json()
    assert [(w["host"], w["pid"]) for w in full["live"]] == [(LIVE_HOST, LIVE_PID)]
    for viewer in others:
        body = (await viewer.get("/api/queue/workers")).json()
        assert [(w["host"], w["pid"]) for w in body["live"]] == [(None, None)]
        page = await viewer.get("/admin/workers")
        assert page.status_code == 200
        assert LIVE_HOST not in page.text and DEAD_HOST not in page.text


async def test_job_pages_show_traces_and_paths_to_the_platform_admin_only(
    signed_in: SignedIn, factory: Factory, state: WebState
) -> None:
    company = await factory.company(CompanyKind.LAB)
    job_id = await _failed_job(state, company)
    platform, (admin, _supplier) = await _viewers(signed_in, factory, company)
    api = f"/api/queue/pdf/jobs/{job_id}"
    page = f"/admin/queues/pdf/jobs/{job_id}"

    full = (await platform.get(api)).json()
    assert SERVER_PATH in full["failed_reason"]
    assert full["stacktrace"] and "Traceback" in full["stacktrace"][0]
    assert __file__ in full["stacktrace"][0]
    html = (await platform.get(page)).text
    assert SERVER_PATH in html and "Stack traces" in html

    detail = await admin.get(api)
    assert detail.status_code == 200
    body = detail.json()
    assert body["stacktrace"] == []
    assert body["failed_reason"].startswith("FileNotFoundError: [Errno 2] No such file")
    assert SERVER_PATH not in body["failed_reason"]
    assert "o-1.pdf" not in body["failed_reason"]
    listed = (await admin.get("/api/queue/pdf/jobs?state=failed")).json()["items"]
    assert [item["failed_reason"] for item in listed] == [body["failed_reason"]]
    html = (await admin.get(page)).text
    assert "No such file or directory" in html
    for text in (SERVER_PATH, "Traceback", __file__, "Stack traces"):
        assert text not in html, text
    html = (await admin.get("/admin/queues/pdf?state=failed")).text
    assert "No such file or directory" in html and SERVER_PATH not in html

    # Failure groups show a sample job's stack trace: the platform admin's only.
    (group,) = (await platform.get("/api/queue/failures?queue=pdf")).json()["groups"]
    assert SERVER_PATH in group["sample_stacktrace"]
    assert SERVER_PATH in (await platform.get("/admin/failures")).text
    (group,) = (await admin.get("/api/queue/failures?queue=pdf")).json()["groups"]
    assert group["sample_stacktrace"] is None
    assert "No such file or directory" in group["message"]
    assert SERVER_PATH not in group["message"]
    html = (await admin.get("/admin/failures")).text
    assert "No such file or directory" in html
    for text in (SERVER_PATH, "Traceback", "sample-trace"):
        assert text not in html, text

    # An operation's answer is the job page's body: redacted the same way.
    retried = await admin.post(f"{api}/retry")
    assert retried.status_code == 200
    assert SERVER_PATH not in retried.text and "Traceback" not in retried.text


async def test_redis_errors_name_no_server_for_company_admins(tmp_path: Path) -> None:
    """Redis mode with Redis gone: the driver's errors name its address (in the store's
    error and the fall-back's reason); a company admin gets only that it is down."""
    port = free_port()  # nobody listens there
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        redis_url=f"redis://127.0.0.1:{port}/0",
        secret_key=SECRET_KEY,
        start_workers=False,
    )
    system = await JobSystem.open(settings)
    try:

        async def down() -> bool:
            return (await system.monitor.health())["fallback"]["reason"] is not None

        await eventually(down)
        report = await system.monitor.health()
    finally:
        await system.close()
    address = f"127.0.0.1:{port}"
    assert address in json.dumps(health_for(report, User(role=Role.PLATFORM_ADMIN)))
    for role in (Role.ADMIN, Role.COMPANY_ADMIN):
        public = health_for(report, User(role=role))
        text = json.dumps(public)
        assert address not in text and str(port) not in text
        assert public["stores"]["redis"]["reachable"] is False
        assert public["stores"]["redis"]["error"] == "Redis does not answer."
        assert public["fallback"]["redis_up"] is False
        assert [p["code"] for p in public["problems"]] == ["redis_unavailable"]
