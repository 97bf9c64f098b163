"""The per-company quota of ``/api/ai`` and the fairness bound, through the API.

The issue's flood: one practice's manager sends 200 ``POST /api/ai/runs/demand-forecast``.
Only its quota is queued (429 with ``Retry-After`` for the rest), and another practice's
08:00 briefing and chat answer start within the bound of docs/jobs.md, counted in jobs
the ai queue starts ahead of them (the store's own order), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from ils.domain.companies import Company, CompanyKind, Role
from ils.domain.content import Message
from ils.jobs.model import JobState
from ils.settings import QueueOverride, Settings
from ils.web.state import WebState
from tests.web.api_support import count
from tests.web.conftest import DbMaker, Factory, SignedIn

FLOOD = 200
#: The default quota of each class on the ai queue.
MAX_OUTSTANDING = 10
DAY = date(2026, 12, 5)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app's settings without the ai queue's rate limit, so the test can drain the
    whole queue in the store's order (the limit decides when, not in which order)."""
    return settings.model_copy(update={"queues": {"ai": QueueOverride(rate_limit_max=0)}})


async def flood_runs(manager: httpx.AsyncClient, times: int) -> list[httpx.Response]:
    return [await manager.post("/api/ai/runs/demand-forecast", json={}) for _ in range(times)]


async def drain(state: WebState) -> list[str]:
    """The ai queue's job ids in the order workers get them."""
    order: list[str] = []
    while (fetched := await state.system.local.fetch("ai", "drain-token")).job is not None:
        order.append(fetched.job.id)
    return order


async def ask(member: httpx.AsyncClient, content: str) -> httpx.Response:
    conversation = (await member.post("/api/ai/conversations", json={})).json()
    return await member.post(
        f"/api/ai/conversations/{conversation['id']}/messages", json={"content": content}
    )


async def test_a_flood_of_runs_is_cut_at_the_quota_with_retry_after(
    signed_in: SignedIn, state: WebState
) -> None:
    manager, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE)
    responses = await flood_runs(manager, FLOOD)
    statuses = [response.status_code for response in responses]
    assert statuses == [202] * MAX_OUTSTANDING + [429] * (FLOOD - MAX_OUTSTANDING)
    refused = responses[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert "at most 10" in refused.json()["detail"]
    waiting = await state.system.local.counts("ai")
    assert waiting[JobState.WAITING] == MAX_OUTSTANDING
    # Another practice is not refused for the first one's flood.
    other, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE)
    assert (await other.post("/api/ai/runs/demand-forecast", json={})).status_code == 202


async def test_another_practices_briefing_and_chat_start_within_the_bound(
    signed_in: SignedIn, state: WebState, factory: Factory
) -> None:
    flooder, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE)
    await flood_runs(flooder, FLOOD)
    practice_b: Company = await factory.company(CompanyKind.PRACTICE)
    member_b, _ = await signed_in(Role.STAFF, company=practice_b)
    # The 08:00 briefing, queued as the schedules queue it (platform work, no demand).
    briefing = await state.system.helpers.queue_daily_briefing(practice_b.id, DAY)
    asked = await ask(member_b, "How many orders this week?")
    assert asked.status_code == 202, asked.text
    chat_id = asked.json()["job"]["job_id"]
    manager_b, _ = await signed_in(Role.ADMIN, company=practice_b)
    run_id = (await manager_b.post("/api/ai/runs/demand-forecast", json={})).json()["job_id"]

    order = await drain(state)
    # Nothing of the flood starts before the briefing or the chat answer (before the
    # policy: the briefing was 201st, behind all of A's runs); B's own run waits behind
    # at most one of A's runs (their level-0 one).
    assert order.index(briefing.job_id) == 0
    assert order.index(chat_id) == 1
    assert order.index(run_id) <= 3
    assert len(order) == MAX_OUTSTANDING + 3


async def test_a_companys_chat_answers_have_a_quota_too(
    signed_in: SignedIn, factory: Factory, db: DbMaker
) -> None:
    practice = await factory.company(CompanyKind.PRACTICE)
    members = [(await signed_in(Role.STAFF, company=practice))[0] for _ in range(3)]
    # Four questions each (under the five a minute of one user): the eleventh answer
    # waiting for the company is one too many.
    statuses = [(await ask(member, "Stock?")).status_code for member in members for _ in range(4)]
    assert statuses == [202] * MAX_OUTSTANDING + [429] * 2
    assert await count(db, Message) == MAX_OUTSTANDING  # the refused questions left nothing
    refused = await ask(members[2], "Still there?")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Runs are another class: the company's managers still have their own quota.
    manager, _ = await signed_in(Role.ADMIN, company=practice)
    assert (await manager.post("/api/ai/runs/demand-forecast", json={})).status_code == 202
