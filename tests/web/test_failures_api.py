"""Failure groups in the monitoring API and its dashboard page: who may, company scope,
retry and remove of a whole group with their audit entries, unknown groups.

Failed jobs are recorded in the app's job store the way the consumer records them
(a reason and the stack trace of a raised exception), on the ``oma`` queue, which has
no rate limit, so each fetch claims the next job at once.
"""

from __future__ import annotations

import traceback
import uuid
from typing import Any

import httpx

from ils.domain.companies import CompanyKind, Role
from ils.errors import PermanentJobError
from ils.jobs.model import JobOptions, JobState, NewJob
from ils.web.state import WebState
from tests.web.conftest import SignedIn

Q = "oma"
HOSTILE = "<script>alert('owned')</script>"


def lens_data() -> tuple[str, str]:
    """The same problem each time, with another order's id in the message."""
    try:
        raise PermanentJobError(f"order {uuid.uuid4()} has no lens data for ada@lab.example")
    except PermanentJobError as exc:
        return str(exc), traceback.format_exc()


def no_shape() -> tuple[str, str]:
    try:
        raise ValueError(f"{HOSTILE} tracing has {uuid.uuid4().int % 1000} points")
    except ValueError as exc:
        return f"ValueError: {exc}", traceback.format_exc()


async def fail(
    state: WebState, company_id: str | None, failures: list[tuple[str, str]]
) -> list[str]:
    """One oma job per failure, made for ``company_id``, failed for good; the ids."""
    store = state.system.local
    jobs = [
        NewJob(
            "process-oma-file",
            {"type": "process-oma-file", "orderId": f"order-{n}", "fileId": f"file-{n}"},
            JobOptions(attempts=1, company_id=company_id),
        )
        for n in range(len(failures))
    ]
    ids = await store.add_bulk(Q, jobs)
    planned = dict(zip(ids, failures, strict=True))
    for _ in ids:
        fetched = await store.fetch(Q, uuid.uuid4().hex)
        assert fetched.job is not None
        reason, trace = planned[fetched.job.id]
        await store.fail(Q, fetched.job, reason, trace, retry=False)
    return ids


async def groups(client: httpx.AsyncClient, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/api/queue/failures{query}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["groups"]
    return found


async def state_of(state: WebState, job_id: str) -> JobState | None:
    job = await state.system.local.get_job(Q, job_id)
    return None if job is None else job.state


async def test_roles(client: httpx.AsyncClient, signed_in: SignedIn, state: WebState) -> None:
    await fail(state, None, [lens_data()])
    paths = [
        ("GET", "/api/queue/failures"),
        ("POST", f"/api/queue/failures/{Q}-0123456789abcdef/retry"),
        ("POST", f"/api/queue/failures/{Q}-0123456789abcdef/remove"),
    ]
    for method, path in paths:
        assert (await client.request(method, path)).status_code == 401, path
    staff, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    tech, _ = await signed_in(Role.LAB_TECH, CompanyKind.LAB)
    for user_client in (staff, tech):
        for method, path in paths:
            assert (await user_client.request(method, path)).status_code == 403, path


async def test_groups_and_actions_are_scoped_to_the_company(
    signed_in: SignedIn, state: WebState
) -> None:
    mine_client, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    theirs_client, other = await signed_in(Role.ADMIN, CompanyKind.LAB)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    mine = await fail(state, me.company_id, [lens_data() for _ in range(3)])
    theirs = await fail(state, other.company_id, [lens_data() for _ in range(2)])
    their_shape = await fail(state, other.company_id, [no_shape()])

    everything = await groups(platform)
    assert [(g["count"], g["exception_type"]) for g in everything] == [
        (5, "ils.errors.PermanentJobError"),
        (1, "ValueError"),
    ]
    lens, shape = everything
    # Ids, numbers and e-mail addresses are masked; the markup stays text for the page.
    assert lens["message"] == "order <uuid> has no lens data for <email>"
    assert shape["message"] == f"{HOSTILE} tracing has <n> points"
    assert lens["queue"] == Q and lens["name"] == "process-oma-file"
    assert "PermanentJobError" in lens["sample_stacktrace"]
    assert lens["first_seen"] <= lens["last_seen"]

    # A company admin sees their company's failures only.
    assert [(g["fingerprint"], g["count"]) for g in await groups(mine_client)] == [
        (lens["fingerprint"], 3)
    ]
    assert {g["sample_job_id"] for g in await groups(mine_client)} <= set(mine)
    assert sorted((g["fingerprint"], g["count"]) for g in await groups(theirs_client)) == sorted(
        [(lens["fingerprint"], 2), (shape["fingerprint"], 1)]
    )
    # Another company's group is not found, and nothing of it changes.
    refused = await mine_client.post(f"/api/queue/failures/{shape['fingerprint']}/retry")
    assert refused.status_code == 404 and refused.json() == {"detail": "not found"}
    assert await state_of(state, their_shape[0]) is JobState.FAILED

    # Retrying the shared group retries the company's own jobs of it, no one else's.
    retried = await mine_client.post(f"/api/queue/failures/{lens['fingerprint']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json() == {
        "fingerprint": lens["fingerprint"],
        "queue": Q,
        "action": "retry",
        "count": 3,
        "missing": 0,
        "truncated": False,
    }
    assert {await state_of(state, job_id) for job_id in mine} == {JobState.WAITING}
    assert {await state_of(state, job_id) for job_id in theirs} == {JobState.FAILED}
    assert await groups(mine_client) == []
    # Done once: the group is gone for this company.
    again = await mine_client.post(f"/api/queue/failures/{lens['fingerprint']}/retry")
    assert again.status_code == 404


async def test_actions_are_audited(signed_in: SignedIn, state: WebState) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    lens_ids = await fail(state, me.company_id, [lens_data() for _ in range(4)])
    shape_ids = await fail(state, None, [no_shape() for _ in range(2)])
    lens, shape = await groups(platform, f"?queue={Q}")

    retried = await platform.post(
        f"/api/queue/failures/{lens['fingerprint']}/retry", headers={"User-Agent": "group-test"}
    )
    assert retried.json()["count"] == 4
    removed = await platform.post(f"/api/queue/failures/{shape['fingerprint']}/remove")
    assert removed.json()["count"] == 2 and removed.json()["action"] == "remove"
    assert [await state_of(state, job_id) for job_id in shape_ids] == [None, None]

    audit = (await platform.get("/api/queue/audit")).json()["items"]
    by_action = {entry["action"]: entry for entry in audit}
    assert set(by_action) == {"group-retry", "group-remove"}
    entry = by_action["group-retry"]
    assert (entry["queue"], entry["user_email"], entry["user_agent"]) == (Q, me.email, "group-test")
    assert sorted(entry["detail"].pop("job_ids")) == sorted(lens_ids)
    assert entry["detail"] == {
        "fingerprint": lens["fingerprint"],
        "name": "process-oma-file",
        "exception_type": "ils.errors.PermanentJobError",
        "message": "order <uuid> has no lens data for <email>",
        "count": 4,
        "missing": 0,
    }
    assert sorted(by_action["group-remove"]["detail"]["job_ids"]) == sorted(shape_ids)


async def test_unknown_groups_and_queues(signed_in: SignedIn, state: WebState) -> None:
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    failed = await fail(state, None, [lens_data()])
    (lens,) = await groups(platform)
    digest = lens["fingerprint"].rpartition("-")[2]
    for wrong in ("nonsense", f"{Q}-{'0' * 16}", f"sms-{digest}", f"email-{digest}", "x" * 100):
        for action in ("retry", "remove"):
            response = await platform.post(f"/api/queue/failures/{wrong}/{action}")
            assert response.status_code == 404, (wrong, response.text)
    assert await state_of(state, failed[0]) is JobState.FAILED
    assert (await platform.get("/api/queue/failures?queue=sms")).status_code == 404
    assert await groups(platform, "?queue=pdf") == []
    body = (await platform.get("/api/queue/failures?per_queue=1")).json()
    assert (body["per_queue"], body["scanned"], body["failed"], body["truncated"]) == (
        1,
        1,
        1,
        False,
    )
    await fail(state, None, [lens_data()])
    body = (await platform.get("/api/queue/failures?per_queue=1")).json()
    assert (body["scanned"], body["failed"], body["truncated_queues"]) == (1, 2, [Q])
    assert [g["count"] for g in body["groups"]] == [1]
    assert (await platform.get("/api/queue/failures?per_queue=0")).status_code == 422


async def test_the_page_shows_the_groups_in_scope(signed_in: SignedIn, state: WebState) -> None:
    mine_client, me = await signed_in(Role.COMPANY_ADMIN, CompanyKind.LAB)
    _, other = await signed_in(Role.ADMIN, CompanyKind.LAB)
    await fail(state, me.company_id, [no_shape() for _ in range(2)])
    await fail(state, other.company_id, [lens_data()])
    page = await mine_client.get("/admin/failures")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/admin/failures" aria-current="page">Failures</a>' in html
    assert html.count('class="card failure-group"') == 1
    assert '<span class="group-count" data-group-count title="jobs">2</span>' in html
    # The message is escaped, never markup; the other company's group is not there.
    assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html
    assert "lens data" not in html
    assert "<summary>Sample stack trace</summary>" not in html  # the platform admin's only
    assert (await mine_client.get("/admin/failures?queue=sms")).status_code == 404
