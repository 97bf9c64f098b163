"""``GET /api/queue/workers`` and ``/admin/workers``: who may look, and what each
viewer sees, on SQLite and PostgreSQL.

The heartbeat rows are written with the store call a worker's heartbeat makes
(``record_worker``; what a real worker puts in them is tested in
``tests/jobs/test_workers_view.py``): one live worker running a job of each of two
companies and a platform job, one that stopped.
"""

from __future__ import annotations

from typing import Any

import httpx

from ils.domain.companies import Company, CompanyKind, Role
from ils.jobs.stores.local.worker_rows import WorkerDetails
from ils.web.state import WebState
from tests.web.conftest import Factory, SignedIn

PATH = "/api/queue/workers"


def _job(job_id: str, company_id: str | None, started_at_ms: int) -> dict[str, Any]:
    return {
        "queue": "pdf",
        "job_id": job_id,
        "name": "order-sheet",
        "store": "local",
        "started_at_ms": started_at_ms,
        "company_id": company_id,
    }


async def _workers(state: WebState, mine: Company, theirs: Company) -> None:
    local = state.system.local
    now = state.clock.now_ms()
    running = [
        _job("job/mine 1", mine.id, now - 2_000),
        _job("job-theirs", theirs.id, now - 1_000),
        _job("job-platform", None, now - 500),
    ]
    details = WorkerDetails("1.2.3", {"pdf": 4, "email": 2}, running, jobs_done=7, jobs_failed=2)
    await local.record_worker(
        "w-live", "lab-host-1", 4321, ["pdf", "email"], now - 60_000, details=details
    )
    await local.record_worker(
        "w-stopped", "lab-host-2", 99, ["ai"], now - 120_000, details=WorkerDetails("1.2.2")
    )
    await local.forget_worker("w-stopped")


async def test_401_without_a_session_403_for_staff_and_lab_techs(
    client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    assert (await client.get(PATH)).status_code == 401
    for role, kind in ((Role.STAFF, CompanyKind.PRACTICE), (Role.LAB_TECH, CompanyKind.LAB)):
        user_client, _ = await signed_in(role, kind)
        assert (await user_client.get(PATH)).status_code == 403, role
        page = await user_client.get("/admin/workers")
        assert page.status_code == 403, role


async def test_no_workers_is_said_plainly(signed_in: SignedIn) -> None:
    admin, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    body = (await admin.get(PATH)).json()
    assert (body["live"], body["recently_gone"]) == ([], [])
    assert body["heartbeat_s"] == 10.0


async def test_a_platform_admin_sees_every_worker_in_full(
    signed_in: SignedIn, factory: Factory, state: WebState
) -> None:
    admin, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    theirs = await factory.company(CompanyKind.PRACTICE)
    mine = await factory.company(CompanyKind.LAB)
    await _workers(state, mine, theirs)
    response = await admin.get(PATH)
    assert response.status_code == 200
    body = response.json()
    (live,) = body["live"]
    assert (live["id"], live["host"], live["pid"], live["version"]) == (
        "w-live",
        "lab-host-1",
        4321,
        "1.2.3",
    )
    assert live["queues"] == ["pdf", "email"]
    assert live["concurrency"] == {"pdf": 4, "email": 2}
    assert (live["jobs_done"], live["jobs_failed"], live["gone"]) == (7, 2, None)
    running = [job["job_id"] for job in live["running"]]
    assert running == ["job/mine 1", "job-theirs", "job-platform"]
    assert live["other_running"] == 0
    first = live["running"][0]
    assert first["href"] == "/api/queue/pdf/jobs/job%2Fmine%201"
    assert first["company_id"] == mine.id
    assert 0 <= live["seen_s_ago"] < 30
    (gone,) = body["recently_gone"]
    assert (gone["id"], gone["gone"], gone["host"]) == ("w-stopped", "stopped", "lab-host-2")
    assert gone["stopped_at"] is not None
    # The dashboard page shows the same, with links to the job pages.
    page = await admin.get("/admin/workers")
    assert page.status_code == 200
    assert "lab-host-1" in page.text and "4321" in page.text
    assert 'href="/admin/queues/pdf/jobs/job%2Fmine%201"' in page.text
    assert "job-theirs" in page.text and "job-platform" in page.text


async def test_a_company_admin_sees_no_hosts_and_only_its_own_running_jobs(
    signed_in: SignedIn, factory: Factory, state: WebState
) -> None:
    mine = await factory.company(CompanyKind.LAB)
    theirs = await factory.company(CompanyKind.PRACTICE)
    await _workers(state, mine, theirs)
    for role in (Role.ADMIN, Role.COMPANY_ADMIN):
        admin, _ = await signed_in(role, CompanyKind.LAB, company=mine)
        body = (await admin.get(PATH)).json()
        (live,) = body["live"]
        assert (live["host"], live["pid"]) == (None, None), role
        assert [job["job_id"] for job in live["running"]] == ["job/mine 1"]
        assert live["other_running"] == 2
        # Counts of the whole process: how busy it is, naming no company's jobs.
        assert (live["jobs_done"], live["jobs_failed"]) == (7, 2)
        (gone,) = body["recently_gone"]
        assert (gone["host"], gone["pid"]) == (None, None)
        page = await admin.get("/admin/workers")
        assert page.status_code == 200
        for hidden in ("lab-host-1", "lab-host-2", "job-theirs", "job-platform", theirs.id):
            assert hidden not in page.text, (role, hidden)
        assert "job/mine 1" in page.text
        assert "2 jobs of other companies" in page.text
    # The other company's admin sees its job, and not this one's.
    other, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE, company=theirs)
    (live,) = (await other.get(PATH)).json()["live"]
    assert [job["job_id"] for job in live["running"]] == ["job-theirs"]
