"""A job operation of the monitoring API and its audit entry share the request's one
transaction: no commit in the middle, and a change is never left without its entry."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.audit import AuditEntry
from ils.domain.companies import CompanyKind, Role
from ils.jobs.model import JobState
from ils.web.services import queue_jobs as service
from ils.web.state import WebState
from tests.web.conftest import SignedIn, run_pdf_until_failed
from tests.web.test_queue_jobs import add, no_lens_data


async def test_an_operation_commits_once_with_its_audit_entry(
    signed_in: SignedIn, state: WebState, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    await run_pdf_until_failed(state, no_lens_data, 1)
    commits: list[AsyncSession] = []
    commit = AsyncSession.commit

    async def counted(session: AsyncSession) -> None:
        commits.append(session)
        await commit(session)

    monkeypatch.setattr(AsyncSession, "commit", counted)
    response = await platform.post(f"/api/queue/pdf/jobs/{job_id}/retry")
    monkeypatch.undo()
    assert response.status_code == 200 and response.json()["state"] == "waiting"
    assert len(commits) == 1  # the request's own, when the route returns
    audit = (await platform.get("/api/queue/audit")).json()["items"]
    assert [(entry["action"], entry["job_id"]) for entry in audit] == [("retry", job_id)]


async def test_a_change_whose_audit_entry_fails_is_rolled_back(
    signed_in: SignedIn, state: WebState, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    await run_pdf_until_failed(state, no_lens_data, 1)
    audit = service.audit

    def unwritable(session: AsyncSession, *args: Any, **kwargs: Any) -> None:
        """The entry and one the database refuses at commit (no user e-mail)."""
        audit(session, *args, **kwargs)
        session.add(AuditEntry(at=args[2], user_id="x", company_id="x", action="x", queue="x"))

    monkeypatch.setattr(service, "audit", unwritable)
    response = await platform.post(f"/api/queue/pdf/jobs/{job_id}/retry")
    monkeypatch.undo()
    assert response.status_code == 500
    record = await state.system.local.get_job("pdf", job_id)
    assert record is not None and record.state is JobState.FAILED
    assert (await platform.get("/api/queue/audit")).json()["items"] == []


async def test_a_refused_operation_leaves_no_audit_entry(
    signed_in: SignedIn, state: WebState
) -> None:
    platform, me = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.LAB)
    job_id = await add(state, "order-1", me.company_id)
    response = await platform.post(f"/api/queue/pdf/jobs/{job_id}/retry")
    assert response.status_code == 409
    assert response.json() == {"detail": "cannot retry a job that is waiting"}
    assert (await platform.post("/api/queue/pdf/jobs/nope/promote")).status_code == 404
    assert (await platform.get("/api/queue/audit")).json()["items"] == []
