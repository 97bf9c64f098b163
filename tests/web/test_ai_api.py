"""``/api/ai``: results scoped to the company, runs for managers, chat for each user.

On SQLite and PostgreSQL with workers off; the chat round trip starts the ai queue's
runner itself so the answer really comes from the worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import httpx
import pytest

from ils.domain.companies import CompanyKind, Role
from ils.domain.content import AIResult, AIResultKind, Conversation, Message
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.web.state import WebState
from ils.workers import ai
from tests.web.api_support import all_jobs, count, errors_of, queued
from tests.web.conftest import DbMaker, Factory, SignedIn

DAY = date(2026, 11, 20)


async def test_without_a_session_every_route_answers_401(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/ai/results"),
        ("GET", "/api/ai/results/abc"),
        ("GET", "/api/ai/briefings/2026-11-20"),
        ("POST", "/api/ai/runs/daily-briefing"),
        ("POST", "/api/ai/runs/demand-forecast"),
        ("GET", "/api/ai/conversations"),
        ("POST", "/api/ai/conversations"),
        ("GET", "/api/ai/conversations/abc"),
        ("POST", "/api/ai/conversations/abc/messages"),
        ("GET", "/api/ai/conversations/abc/messages"),
        ("DELETE", "/api/ai/conversations/abc"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)


# -- runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COMPANY_ADMIN, Role.PLATFORM_ADMIN])
async def test_managers_queue_ai_jobs_for_their_company(
    signed_in: SignedIn, state: WebState, role: Role
) -> None:
    manager, user = await signed_in(role, CompanyKind.LAB)
    runs = {
        "daily-briefing": {"date": "2026-11-20"},
        "demand-forecast": {"forecast_days": 14},
        "anomaly-detection": {"metric_type": "revenue", "time_range": "weekly"},
        "insight-generation": {
            "insight_type": "operations",
            "period_start": "2026-11-01",
            "period_end": "2026-11-19",
        },
    }
    for name, body in runs.items():
        response = await manager.post(f"/api/ai/runs/{name}", json=body)
        assert response.status_code == 202, response.text
        assert response.json()["queue"] == "ai" and response.json()["name"] == name
    jobs = {job.name: job for job in await queued(state, "ai")}
    assert set(jobs) == set(runs)
    assert all(job.data["companyId"] == user.company_id for job in jobs.values())
    assert all(job.company_id == user.company_id for job in jobs.values())
    assert jobs["demand-forecast"].data["forecastDays"] == 14
    assert jobs["anomaly-detection"].data["timeRange"] == "weekly"
    assert jobs["insight-generation"].data["periodEnd"] == "2026-11-19"


async def test_the_briefing_defaults_to_the_companys_today(
    signed_in: SignedIn, state: WebState
) -> None:
    manager, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    assert (await manager.post("/api/ai/runs/daily-briefing", json={})).status_code == 202
    (job,) = await queued(state, "ai", "daily-briefing")
    today = datetime.fromtimestamp(state.clock.now_ms() / 1000, UTC).date()
    assert job.data["date"] == today.isoformat()


@pytest.mark.parametrize("role", [Role.STAFF, Role.LAB_TECH])
async def test_other_roles_may_not_run_ai_jobs(
    signed_in: SignedIn, state: WebState, role: Role
) -> None:
    member, _ = await signed_in(role, CompanyKind.LAB)
    response = await member.post("/api/ai/runs/demand-forecast", json={})
    assert response.status_code == 403
    assert await all_jobs(state) == 0


async def test_bad_run_bodies_answer_422_and_queue_nothing(
    signed_in: SignedIn, state: WebState
) -> None:
    manager, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    cases = [
        ("demand-forecast", {"forecast_days": 0}, "forecast_days"),
        ("demand-forecast", {"forecast_days": 400}, "forecast_days"),
        ("demand-forecast", {"product_ids": ["x" * 40]}, "product_ids.0"),
        ("anomaly-detection", {"metric_type": "weather"}, "metric_type"),
        ("anomaly-detection", {"metric_type": "revenue", "time_range": "hourly"}, "time_range"),
        ("daily-briefing", {"date": "2026-02-30"}, "date"),
        ("daily-briefing", {"surprise": 1}, "surprise"),
    ]
    for name, body, field in cases:
        response = await manager.post(f"/api/ai/runs/{name}", json=body)
        assert list(errors_of(response)) == [field], (name, body)
    inverted = {
        "insight_type": "revenue",
        "period_start": "2026-11-19",
        "period_end": "2026-11-01",
    }
    response = await manager.post("/api/ai/runs/insight-generation", json=inverted)
    assert response.status_code == 422
    assert await all_jobs(state) == 0


# -- results ---------------------------------------------------------------------------


async def test_results_are_the_companys_own(signed_in: SignedIn, factory: Factory) -> None:
    member, user = await signed_in(Role.LAB_TECH, CompanyKind.LAB)
    _, stranger = await signed_in(Role.ADMIN, CompanyKind.LAB)
    mine = AIResult(
        company_id=user.company_id,
        kind=AIResultKind.BRIEFING,
        day=DAY,
        payload={"summary": "Mine"},
    )
    forecast = AIResult(
        company_id=user.company_id, kind=AIResultKind.FORECAST, day=DAY, payload={"products": []}
    )
    theirs = AIResult(
        company_id=stranger.company_id,
        kind=AIResultKind.BRIEFING,
        day=DAY,
        payload={"summary": "Theirs"},
    )
    await factory.add(mine, forecast, theirs)
    page = (await member.get("/api/ai/results")).json()
    assert page["total"] == 2
    assert {item["id"] for item in page["items"]} == {mine.id, forecast.id}
    briefings = (await member.get("/api/ai/results", params={"kind": "briefing"})).json()
    assert [item["payload"]["summary"] for item in briefings["items"]] == ["Mine"]
    assert (await member.get(f"/api/ai/results/{mine.id}")).status_code == 200
    assert (await member.get(f"/api/ai/results/{theirs.id}")).status_code == 404
    day = await member.get(f"/api/ai/briefings/{DAY.isoformat()}")
    assert day.json()["id"] == mine.id
    assert (await member.get("/api/ai/briefings/2026-11-21")).status_code == 404
    assert (await member.get("/api/ai/briefings/yesterday")).status_code == 422
    assert (await member.get("/api/ai/results", params={"kind": "poem"})).status_code == 422


# -- chat ------------------------------------------------------------------------------


async def test_a_question_is_stored_and_queued_by_id(
    signed_in: SignedIn, state: WebState, db: DbMaker
) -> None:
    member, user = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    created = await member.post("/api/ai/conversations", json={})
    assert created.status_code == 201
    conversation = created.json()
    question = "How many orders did we place last week?"
    asked = await member.post(
        f"/api/ai/conversations/{conversation['id']}/messages", json={"content": question}
    )
    assert asked.status_code == 202, asked.text
    message = asked.json()["message"]
    assert message["role"] == "user" and message["content"] == question
    (job,) = await queued(state, "ai", "chat-response")
    assert job.data == {
        "type": "chat-response",
        "userId": user.id,
        "companyId": user.company_id,
        "conversationId": conversation["id"],
        "message": message["id"],
    }
    assert question not in str(job.data)  # the text stays in the database
    shown = (await member.get(f"/api/ai/conversations/{conversation['id']}")).json()
    assert shown["title"] == question
    assert [m["id"] for m in shown["messages"]] == [message["id"]]


async def test_chats_are_each_users_own(signed_in: SignedIn, db: DbMaker) -> None:
    me, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    colleague, _ = await signed_in(Role.ADMIN, CompanyKind.PRACTICE)
    mine = (await me.post("/api/ai/conversations", json={"title": "Stock"})).json()
    await colleague.post("/api/ai/conversations", json={"title": "Theirs"})
    listed = (await me.get("/api/ai/conversations")).json()
    assert [c["title"] for c in listed["items"]] == ["Stock"]
    path = f"/api/ai/conversations/{mine['id']}"
    assert (await colleague.get(path)).status_code == 404
    response = await colleague.post(f"{path}/messages", json={"content": "Hello?"})
    assert response.status_code == 404
    assert (await colleague.delete(path)).status_code == 404
    assert (await me.delete(path)).status_code == 204
    assert await count(db, Conversation) == 1


async def test_bad_questions_and_floods_are_refused(
    signed_in: SignedIn, state: WebState, db: DbMaker
) -> None:
    member, _ = await signed_in(Role.STAFF, CompanyKind.LAB)
    conversation = (await member.post("/api/ai/conversations", json={})).json()
    path = f"/api/ai/conversations/{conversation['id']}/messages"
    for body, field in (
        ({"content": ""}, "content"),
        ({"content": "x" * 4001}, "content"),
        ({"content": "bell\x07"}, "content"),
        ({"text": "hi"}, "content"),
    ):
        response = await member.post(path, json=body)
        assert field in errors_of(response), body
    assert await count(db, Message) == 0
    for n in range(5):
        assert (await member.post(path, json={"content": f"Question {n}"})).status_code == 202
    flood = await member.post(path, json={"content": "One more"})
    assert flood.status_code == 429
    assert await count(db, Message) == 5
    assert len(await queued(state, "ai", "chat-response")) == 5


async def test_the_answer_arrives_as_the_next_message(signed_in: SignedIn, state: WebState) -> None:
    member, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    conversation = (await member.post("/api/ai/conversations", json={})).json()
    path = f"/api/ai/conversations/{conversation['id']}/messages"
    question = (await member.post(path, json={"content": "Which orders are overdue?"})).json()
    await queued(state, "ai")  # relayed from the outbox to the store
    nothing = await member.get(path, params={"after": question["message"]["id"]})
    assert nothing.json() == []

    registry = HandlerRegistry(state.system.job_types)
    ai.register(registry, state.system.worker_context(), offload=ai.InlineOffload())
    runner = Runner(state.system.stores(), [state.system.catalogue["ai"]], registry)
    waiting = asyncio.create_task(
        member.get(path, params={"after": question["message"]["id"], "wait": 10})
    )
    runner.start()
    try:
        answer = (await asyncio.wait_for(waiting, 15)).json()
    finally:
        await runner.stop(5)
    assert [m["role"] for m in answer] == ["assistant"]
    assert "overdue" in answer[0]["content"].lower()
    unknown = await member.get(path, params={"after": "0" * 32})
    assert unknown.status_code == 404
