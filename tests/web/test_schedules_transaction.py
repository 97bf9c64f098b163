"""A schedule change and its audit entry share the request's one transaction, and BullMQ's
job schedulers are synced only after it commits: no commit in the middle of a request.

Redis mode is faked where a test needs it (``JobSchedulers.in_redis`` answers yes and
``JobSchedulers.sync`` records its calls): what is pinned here is when the router asks
for the sync and what it survives, not BullMQ's side of it (``tests/queue``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.audit import AuditEntry
from ils.domain.companies import CompanyKind, Role
from ils.errors import StoreUnavailableError
from ils.jobs.schedules.store import Schedule, ScheduleRow
from ils.jobs.schedules.sync import JobSchedulers
from ils.web.routers import schedules as router
from ils.web.services import queue_jobs
from ils.web.state import WebState
from tests.web.conftest import DbMaker, SignedIn
from tests.web.test_schedules_api import audit_actions, body


@dataclass
class Commits:
    """Every ``AsyncSession.commit`` while installed, the requests' and any other."""

    sessions: list[AsyncSession] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        commit = AsyncSession.commit

        async def counted(session: AsyncSession) -> None:
            self.sessions.append(session)
            await commit(session)

        monkeypatch.setattr(AsyncSession, "commit", counted)


@dataclass
class Synced:
    """What each job scheduler sync was given, and what was committed by then."""

    db: DbMaker
    commits: Commits
    calls: list[list[str]] = field(default_factory=list)
    committed_rows: list[list[str]] = field(default_factory=list)
    committed_audit: list[list[str]] = field(default_factory=list)
    commits_before: list[int] = field(default_factory=list)

    async def __call__(self, schedules: Sequence[Schedule]) -> int:
        self.commits_before.append(len(self.commits.sessions))
        self.calls.append(sorted(s.id for s in schedules))
        async with self.db() as session:
            ids = await session.scalars(select(ScheduleRow.id).order_by(ScheduleRow.id))
            self.committed_rows.append(list(ids))
            actions = await session.scalars(select(AuditEntry.action).order_by(AuditEntry.at))
            self.committed_audit.append(list(actions))
        return len(schedules)


def fake_redis_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """New changes see Redis in use (nothing else a change route does asks for it)."""
    monkeypatch.setattr(JobSchedulers, "in_redis", property(lambda _schedulers: True))


async def test_each_change_commits_once_with_its_audit_entry(
    signed_in: SignedIn, db: DbMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    commits = Commits()
    commits.install(monkeypatch)

    async def once(method: str, path: str, **kwargs: Any) -> httpx.Response:
        before = len(commits.sessions)
        response = await admin.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        assert len(commits.sessions) - before == 1, (method, path)  # the request's own
        return response

    created = (await once("POST", "/api/schedules", json=body())).json()
    path = f"/api/schedules/{created['id']}"
    await once("PATCH", path, json={"cron": "30 6 * * *"})
    await once("POST", f"{path}/pause")
    await once("POST", f"{path}/resume")
    await once("DELETE", path)
    monkeypatch.undo()
    assert [action for action, _ in await audit_actions(db)] == [
        "schedule-create",
        "schedule-update",
        "schedule-pause",
        "schedule-resume",
        "schedule-delete",
    ]


async def test_redis_mode_syncs_job_schedulers_after_the_commit(
    signed_in: SignedIn, db: DbMaker, state: WebState, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    commits = Commits()
    synced = Synced(db, commits)
    fake_redis_mode(monkeypatch)
    monkeypatch.setattr(state.system.schedulers, "sync", synced)
    commits.install(monkeypatch)

    created = await admin.post("/api/schedules", json=body())
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    paused = await admin.post(f"/api/schedules/{schedule_id}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await admin.delete(f"/api/schedules/{schedule_id}")).status_code == 204
    monkeypatch.undo()

    assert len(commits.sessions) == 3  # one per request, none by the sync
    assert synced.commits_before == [1, 2, 3]  # each sync after its request committed
    assert synced.calls == [[schedule_id], [schedule_id], []]
    assert synced.committed_rows == synced.calls  # it saw what was committed
    assert synced.committed_audit == [
        ["schedule-create"],
        ["schedule-create", "schedule-pause"],
        ["schedule-create", "schedule-pause", "schedule-delete"],
    ]


@pytest.mark.parametrize(
    "error", [StoreUnavailableError("Redis is down"), RuntimeError("a bug")], ids=type
)
async def test_a_failed_sync_keeps_the_change_and_is_logged(
    signed_in: SignedIn,
    db: DbMaker,
    state: WebState,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)

    async def failing(schedules: Sequence[Schedule]) -> int:
        raise error

    fake_redis_mode(monkeypatch)
    monkeypatch.setattr(state.system.schedulers, "sync", failing)
    with caplog.at_level(logging.WARNING, logger=router.__name__):
        created = await admin.post("/api/schedules", json=body())
    monkeypatch.undo()
    assert created.status_code == 201, created.text
    assert (await admin.get(f"/api/schedules/{created.json()['id']}")).status_code == 200
    assert await audit_actions(db) == [("schedule-create", created.json()["id"])]
    (record,) = [r for r in caplog.records if r.name == router.__name__]
    assert "sync" in record.getMessage()


async def test_a_change_that_fails_to_commit_is_not_synced(
    signed_in: SignedIn, db: DbMaker, state: WebState, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    synced = Synced(db, Commits())
    audit = queue_jobs.audit  # what the router calls for its audit entries

    def unwritable(session: AsyncSession, *args: Any, **kwargs: Any) -> None:
        """The entry and one the database refuses at commit (no user e-mail)."""
        audit(session, *args, **kwargs)
        session.add(AuditEntry(at=args[2], user_id="x", company_id="x", action="x", queue="x"))

    fake_redis_mode(monkeypatch)
    monkeypatch.setattr(state.system.schedulers, "sync", synced)
    monkeypatch.setattr(router, "audit", unwritable)
    response = await admin.post("/api/schedules", json=body())
    monkeypatch.undo()
    assert response.status_code == 500
    assert synced.calls == []
    assert (await admin.get("/api/schedules")).json() == []
    assert await audit_actions(db) == []
