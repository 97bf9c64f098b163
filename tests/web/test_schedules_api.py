"""``/api/schedules``: each role sees and manages what it may; every change audited.

On SQLite and PostgreSQL (local mode); the scheduler loop is not running, so the
built-in schedules are made by calling its sync once where a test needs them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from ils.domain.audit import AuditEntry
from ils.domain.companies import CompanyKind, Role
from ils.jobs.schedules.store import ScheduleRow, ScheduleStore
from ils.web.state import WebState
from ils.workers.scheduled.loop import ScheduleLoop
from tests.web.api_support import count, errors_of, queued
from tests.web.conftest import DbMaker, Factory, SignedIn

BRIEFING = {"queue": "ai", "name": "daily-briefing", "data": {"date": "{date}"}}


def body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Morning briefing", "cron": "0 7 * * *", "jobs": [BRIEFING], **overrides}


async def audit_actions(db: DbMaker) -> list[tuple[str, str | None]]:
    async with db() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id))
        return [(row.action, row.job_id) for row in rows]


async def test_without_a_session_401_and_for_other_roles_403(
    client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    for method, path in (
        ("GET", "/api/schedules"),
        ("POST", "/api/schedules"),
        ("GET", "/api/schedules/x"),
        ("PATCH", "/api/schedules/x"),
        ("POST", "/api/schedules/x/pause"),
        ("POST", "/api/schedules/x/resume"),
        ("POST", "/api/schedules/x/run"),
        ("DELETE", "/api/schedules/x"),
    ):
        assert (await client.request(method, path)).status_code == 401, (method, path)
    for role in (Role.STAFF, Role.LAB_TECH):
        member, _ = await signed_in(role, CompanyKind.LAB)
        assert (await member.get("/api/schedules")).status_code == 403
        assert (await member.post("/api/schedules", json=body())).status_code == 403


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COMPANY_ADMIN])
async def test_a_company_admin_manages_their_companys_schedules(
    signed_in: SignedIn, factory: Factory, db: DbMaker, state: WebState, role: Role
) -> None:
    company = await factory.company(CompanyKind.LAB, time_zone="America/New_York")
    admin, user = await signed_in(role, CompanyKind.LAB, company=company)
    created = await admin.post("/api/schedules", json=body())
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["company_id"] == company.id
    assert schedule["time_zone"] == "America/New_York"  # the company's own
    assert schedule["jobs"] == [
        {
            "queue": "ai",
            "name": "daily-briefing",
            "data": {"date": "{date}", "companyId": company.id},
        }
    ]
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert next_run.astimezone(ZoneInfo("America/New_York")).hour == 7
    path = f"/api/schedules/{schedule['id']}"

    edited = await admin.patch(path, json={"cron": "30 6 * * 1-5", "catch_up": "skip"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["cron"] == "30 6 * * 1-5" and edited.json()["catch_up"] == "skip"
    paused = (await admin.post(f"{path}/pause")).json()
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = (await admin.post(f"{path}/resume")).json()
    assert resumed["paused"] is False and resumed["next_run_at"] is not None
    run = await admin.post(f"{path}/run")
    assert run.status_code == 202
    (tick,) = await queued(state, "scheduled", "run-schedule")
    assert tick.data == {"type": "run-schedule", "scheduleId": schedule["id"], "manual": True}
    listed = (await admin.get("/api/schedules")).json()
    assert [s["id"] for s in listed] == [schedule["id"]]
    assert (await admin.delete(path)).status_code == 204
    assert (await admin.get(path)).status_code == 404
    assert await audit_actions(db) == [
        ("schedule-create", schedule["id"]),
        ("schedule-update", schedule["id"]),
        ("schedule-pause", schedule["id"]),
        ("schedule-resume", schedule["id"]),
        ("schedule-run", schedule["id"]),
        ("schedule-delete", schedule["id"]),
    ]
    assert user.company_id == company.id


async def test_company_admins_schedule_only_their_own_ai_jobs(
    signed_in: SignedIn, db: DbMaker
) -> None:
    admin, user = await signed_in(Role.ADMIN, CompanyKind.LAB)
    cases = [
        (
            body(jobs=[{"queue": "email", "name": "general-notification", "data": {}}]),
            "jobs.0.name",
        ),
        (body(jobs=[{"queue": "ai", "name": "teleport", "data": {}}]), "jobs.0.name"),
        (body(jobs=[{"queue": "ai", "name": "anomaly-detection", "data": {}}]), "jobs.0.data"),
        (body(cron="61 7 * * *"), "cron"),
        (body(cron="0 7 * *"), "cron"),
        (body(cron=None, every_s=30), "every_s"),
        (body(cron=None), "cron"),
        (body(every_s=3600), "cron"),
        (body(time_zone="Mars/Olympus"), "time_zone"),
        (body(company_wide=True), "company_wide"),
        (body(jobs=[]), "jobs"),
    ]
    for sent, field in cases:
        response = await admin.post("/api/schedules", json=sent)
        assert response.status_code == 422, (sent, response.text)
        assert field in errors_of(response), (sent, response.json())
    # Another company's id in the data is replaced by the admin's own company.
    sneaky = body(jobs=[{**BRIEFING, "data": {"date": "{date}", "companyId": "0" * 32}}])
    created = (await admin.post("/api/schedules", json=sneaky)).json()
    assert created["jobs"][0]["data"]["companyId"] == user.company_id
    assert await count(db, ScheduleRow) == 1


async def test_others_schedules_are_404_and_platform_admins_see_all(
    signed_in: SignedIn, state: WebState
) -> None:
    mine, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    theirs, _ = await signed_in(Role.COMPANY_ADMIN, CompanyKind.PRACTICE)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    schedule = (await mine.post("/api/schedules", json=body())).json()
    path = f"/api/schedules/{schedule['id']}"
    for method in ("GET", "PATCH", "DELETE"):
        response = await theirs.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404
    for action in ("pause", "resume", "run"):
        assert (await theirs.post(f"{path}/{action}")).status_code == 404
    assert (await theirs.get("/api/schedules")).json() == []
    # A platform admin sees every company's and may make platform-wide schedules
    # of any job type.
    cleanup = {
        "name": "Weekly clean-up",
        "cron": "0 3 * * 0",
        "time_zone": "UTC",
        "company_wide": True,
        "jobs": [{"queue": "scheduled", "name": "cleanup-expired-data", "data": {}}],
    }
    made = await platform.post("/api/schedules", json=cleanup)
    assert made.status_code == 201, made.text
    assert made.json()["company_id"] is None
    ids = {s["id"] for s in (await platform.get("/api/schedules")).json()}
    assert {schedule["id"], made.json()["id"]} <= ids
    assert (await platform.post(f"{path}/pause")).status_code == 200


async def test_built_in_schedules_are_paused_and_run_but_not_edited(
    signed_in: SignedIn, state: WebState, factory: Factory
) -> None:
    company = await factory.company(CompanyKind.PRACTICE, time_zone="Europe/London")
    admin, _ = await signed_in(Role.COMPANY_ADMIN, CompanyKind.PRACTICE, company=company)
    now = datetime.fromtimestamp(state.clock.now_ms() / 1000, UTC)
    await ScheduleLoop(state.system.worker_context(), ScheduleStore()).sync(now)
    listed = {s["builtin"]: s for s in (await admin.get("/api/schedules")).json()}
    assert set(listed) == {"briefing", "anomalies"}  # practices have no stock to forecast
    briefing = listed["briefing"]
    assert briefing["cron"] == "0 8 * * *" and briefing["time_zone"] == "Europe/London"
    path = f"/api/schedules/{briefing['id']}"
    assert (await admin.patch(path, json={"cron": "0 9 * * *"})).status_code == 409
    assert (await admin.delete(path)).status_code == 409
    assert (await admin.post(f"{path}/pause")).json()["paused"] is True
    assert (await admin.post(f"{path}/run")).status_code == 202
