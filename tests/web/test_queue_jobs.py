"""Job operations of the monitoring API: roles, company scope, every operation, audit."""

from __future__ import annotations

from typing import Any

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.errors import PermanentJobError
from ils.jobs.model import JobOptions, JobState
from ils.web.state import WebState
from tests.web.api_support import connect, order_body, patient_of
from tests.web.conftest import Factory, SignedIn, run_pdf_until_failed


async def add(state: WebState, order_id: str, company_id: str | None, **options: Any) -> str:
    """An order-sheet job for ``order_id`` made for ``company``."""
    system = state.system
    model = system.job_types.get("pdf", "order-sheet").model
    ref = await system.producer.enqueue(
        "pdf",
        "order-sheet",
        model.model_validate({"order_id": order_id}),
        JobOptions(company_id=company_id, **options),
    )
    return ref.job_id


async def no_lens_data(payload: Any, ctx: Any) -> None:
    """A pdf handler that fails every job for good."""
    raise PermanentJobError("the order has no lens data")


async def ids(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get(f"/api/queue/pdf/jobs?{query}")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_roles(client: httpx.AsyncClient, signed_in: SignedIn, state: WebState) -> None:
    job_id = await add(state, "order-1", None)
    paths = [
        ("GET", "/api/queue/pdf/jobs"),
        ("GET", f"/api/queue/pdf/jobs/{job_id}"),
        ("POST", f"/api/queue/pdf/jobs/{job_id}/retry"),
        ("POST", f"/api/queue/pdf/jobs/{job_id}/promote"),
        ("DELETE", f"/api/queue/pdf/jobs/{job_id}"),
        ("POST", "/api/queue/pdf/retry-failed"),
        ("GET", "/api/queue/audit"),
    ]
    for method, path in paths:
        assert (await client.request(method, path)).status_code == 401, path
    staff, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    tech, _ = await signed_in(Role.LAB_TECH, CompanyKind.LAB)
    for user_client in (staff, tech):
        for method, path in paths:
            assert (await user_client.request(method, path)).status_code == 403, path
    # Pausing stops a queue for every company: platform_admin only.
    for role in (Role.ADMIN, Role.COMPANY_ADMIN):
        admin, _ = await signed_in(role, CompanyKind.LAB)
        assert (await admin.post("/api/queue/pdf/pause")).status_code == 403
        assert (await admin.post("/api/queue/pdf/resume")).status_code == 403
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert (await admin.get("/api/queue/sms/jobs")).status_code == 404
    assert (await admin.get("/api/queue/pdf/jobs?state=lost")).status_code == 422


async def test_a_company_admin_sees_and_acts_on_their_companys_jobs_only(
    signed_in: SignedIn, state: WebState
) -> None:
    mine_client, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    _, other = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    mine = await add(state, "order-mine", me.company_id)
    theirs = await add(state, "order-theirs", other.company_id)
    nobodys = await add(state, "order-platform", None)

    assert await ids(mine_client, "state=waiting") == [mine]
    everything = await ids(platform, "state=waiting")
    assert sorted(everything) == sorted([mine, theirs, nobodys])

    assert (await mine_client.get(f"/api/queue/pdf/jobs/{theirs}")).status_code == 404
    await run_pdf_until_failed(state, no_lens_data, 3)
    # Retrying another company's failed job: 404, as if it did not exist; not retried.
    assert (await mine_client.post(f"/api/queue/pdf/jobs/{theirs}/retry")).status_code == 404
    record = await state.system.local.get_job("pdf", theirs)
    assert record is not None and record.state is JobState.FAILED
    # Retry-all retries only the company's own.
    response = await mine_client.post("/api/queue/pdf/retry-failed")
    assert response.json() == {"count": 1}
    assert await ids(platform, "state=waiting") == [mine]
    assert sorted(await ids(platform, "state=failed")) == sorted([theirs, nobodys])


async def test_list_search_and_one_job_in_full(signed_in: SignedIn, state: WebState) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    first = await add(state, "order-alpha", me.company_id)
    second = await add(state, "order-beta", me.company_id)
    assert await ids(platform, "state=waiting") == [second, first]
    assert await ids(platform, "state=waiting&search=ALPHA") == [first]  # payload text
    assert await ids(platform, f"state=waiting&search={second[:12]}") == [second]  # id
    assert await ids(platform, "state=waiting&search=order-sheet&limit=1&offset=1") == [first]
    assert await ids(platform, "state=waiting&search=nothing-like-it") == []

    await run_pdf_until_failed(state, no_lens_data, 2)
    response = await platform.get(f"/api/queue/pdf/jobs/{first}")
    assert response.status_code == 200
    job = response.json()
    assert job["state"] == "failed"
    assert job["data"] == {"type": "order-sheet", "orderId": "order-alpha"}
    assert job["failed_reason"] == "the order has no lens data"
    assert any("PermanentJobError" in line for line in job["stacktrace"])
    assert job["company_id"] == me.company_id
    assert job["attempts_made"] == 1 and job["store"] == "local"
    assert job["options"]["priority"] == job["priority"] == 0
    assert job["options"]["attempts"] == 3
    assert job["created_at"] and job["finished_at"]


async def test_operations_and_their_audit_entries(signed_in: SignedIn, state: WebState) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    failed = await add(state, "order-1", me.company_id)
    await run_pdf_until_failed(state, no_lens_data, 1)
    delayed = await add(state, "order-2", me.company_id, delay_ms=3_600_000)
    waiting_to_remove = await add(state, "order-3", me.company_id)

    retried = await platform.post(
        f"/api/queue/pdf/jobs/{failed}/retry", headers={"User-Agent": "audit-test"}
    )
    assert retried.status_code == 200 and retried.json()["state"] == "waiting"
    again = await platform.post(f"/api/queue/pdf/jobs/{failed}/retry")
    assert again.status_code == 409
    assert again.json() == {"detail": "cannot retry a job that is waiting"}

    promoted = await platform.post(f"/api/queue/pdf/jobs/{delayed}/promote")
    assert promoted.status_code == 200 and promoted.json()["state"] == "waiting"
    assert (await platform.post(f"/api/queue/pdf/jobs/{delayed}/promote")).status_code == 409

    assert (await platform.delete(f"/api/queue/pdf/jobs/{waiting_to_remove}")).status_code == 204
    assert (await platform.get(f"/api/queue/pdf/jobs/{waiting_to_remove}")).status_code == 404

    bulk = await platform.post(
        "/api/queue/pdf/jobs/bulk", json={"action": "remove", "job_ids": [failed, "nope"]}
    )
    assert bulk.json() == {"done": [failed], "skipped": {"nope": "not found"}}

    assert (await platform.post("/api/queue/pdf/pause")).status_code == 204
    assert await state.system.local.is_paused("pdf")
    assert (await platform.post("/api/queue/pdf/resume")).status_code == 204
    assert not await state.system.local.is_paused("pdf")

    cleaned = await platform.post(
        "/api/queue/pdf/clean", json={"state": "waiting", "older_than_s": 0}
    )
    assert cleaned.json() == {"count": 1}  # the promoted one
    assert (
        await platform.post("/api/queue/pdf/clean", json={"state": "active"})
    ).status_code == 422

    audit = (await platform.get("/api/queue/audit")).json()
    actions = [(entry["action"], entry["job_id"]) for entry in reversed(audit["items"])]
    assert actions == [
        ("retry", failed),
        ("promote", delayed),
        ("remove", waiting_to_remove),
        ("bulk-remove", None),
        ("pause", None),
        ("resume", None),
        ("clean", None),
    ]
    first = audit["items"][-1]
    assert first["user_email"] == me.email and first["user_agent"] == "audit-test"
    assert first["ip"] and first["queue"] == "pdf"
    assert audit["items"][0]["detail"] == {
        "state": "waiting",
        "older_than_s": 0,
        "limit": 0,
        "count": 1,
    }


async def test_audit_entries_are_read_by_company(signed_in: SignedIn, state: WebState) -> None:
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    admin, admin_user = await signed_in(Role.ADMIN, CompanyKind.LAB)
    other_admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    await add(state, "order-1", admin_user.company_id)
    await platform.post("/api/queue/pdf/pause")
    assert (await admin.post("/api/queue/pdf/retry-failed")).json() == {"count": 0}
    assert [e["action"] for e in (await admin.get("/api/queue/audit")).json()["items"]] == [
        "retry-failed"
    ]
    assert (await other_admin.get("/api/queue/audit")).json()["items"] == []
    assert len((await platform.get("/api/queue/audit")).json()["items"]) == 2


async def test_jobs_queued_by_a_request_carry_the_requesting_company(
    signed_in: SignedIn, state: WebState, factory: Factory
) -> None:
    practice = await factory.company(kind=CompanyKind.PRACTICE, name="Stamp Opticians")
    lab = await factory.company(kind=CompanyKind.LAB, name="Stamp Lab")
    practice_client, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE, company=practice)
    await signed_in(Role.ADMIN, CompanyKind.LAB, company=lab)
    patient = await patient_of(factory, practice)
    await connect(factory, practice, lab)
    response = await practice_client.post("/api/orders", json=order_body(patient.id, lab.id))
    assert response.status_code == 201, response.text
    jobs = []
    for queue in ("email", "pdf", "notification"):
        jobs += await state.system.local.list_jobs(queue, JobState.WAITING)
    assert len(jobs) >= 4 and {job.company_id for job in jobs} == {practice.id}
