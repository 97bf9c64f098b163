"""The AI worker's jobs on a planted lab: what each stores, finds, and tells whom.

Handlers run as the runner would call them (``Env.run``), on SQLite and PostgreSQL,
with forecasts fitted inline (the CPU pool is tested on its own). The planted facts
are in :mod:`tests.workers.ai.planted`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.billing import Invoice, InvoiceLine
from ils.domain.content import AIResult, AIResultKind, Conversation, Message, MessageRole
from ils.domain.orders import Order
from ils.domain.supply import StockLevel
from ils.errors import PermanentJobError
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import ai
from ils.workers.ai import InlineOffload
from tests.workers.ai.planted import NOW, TODAY, Planted, plant
from tests.workers.support import FakeContext


@dataclass
class Env:
    system: JobSystem
    registry: HandlerRegistry
    sessions: async_sessionmaker[AsyncSession]
    planted: Planted

    async def run(self, name: str, job_id: str = "job-1", **fields: Any) -> dict[str, Any]:
        """Validate ``fields`` as the payload of ``name`` and call its handler."""
        return (await self.run_with_context(name, job_id, **fields))[0]

    async def run_with_context(
        self, name: str, job_id: str = "job-1", **fields: Any
    ) -> tuple[dict[str, Any], FakeContext]:
        job_type = self.system.job_types.get("ai", name)
        payload = job_type.model.model_validate(fields)
        registration = self.registry.lookup("ai", name)
        assert registration is not None
        ctx = FakeContext(job_id, "ai")
        result: dict[str, Any] = await registration.handler(payload, ctx)
        return result, ctx

    async def results(self, kind: AIResultKind) -> list[AIResult]:
        async with self.sessions() as session:
            query = select(AIResult).where(AIResult.kind == kind).order_by(AIResult.day)
            return list(await session.scalars(query))

    async def jobs(self, queue: str, name: str) -> list[JobRecord]:
        found: list[JobRecord] = []
        for state in JobState:
            found += await self.system.local.list_jobs(queue, state, limit=1000)
        return [job for job in found if job.name == name]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    options: dict[str, Any] = {"data_dir": tmp_path / "var", "redis_url": None}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        options["database_url"] = url
    clock = ManualClock(start_ms=int(NOW.timestamp() * 1000))
    system = await JobSystem.open(Settings(_env_file=None, **options), clock=clock)
    registry = HandlerRegistry(system.job_types)
    ai.register(registry, system.worker_context(), offload=InlineOffload())
    sessions = session_factory(system.engine)
    try:
        yield Env(system, registry, sessions, await plant(sessions))
    finally:
        await system.close()


# -- daily briefing ---------------------------------------------------------------------


async def test_the_briefing_names_the_planted_overdue_orders_and_low_stock(env: Env) -> None:
    planted = env.planted
    result = await env.run("daily-briefing", company_id=planted.lab.id, date=TODAY.isoformat())

    (row,) = await env.results(AIResultKind.BRIEFING)
    assert row.day == TODAY and row.job_id == "job-1" and result["resultId"] == row.id
    briefing = row.payload
    attention = briefing["attention"]
    assert [o["number"] for o in attention["overdueOrders"]] == planted.overdue_numbers
    assert [o["number"] for o in attention["dueToday"]] == planted.due_today
    assert [item["sku"] for item in attention["lowStock"]] == planted.low_skus
    text = " ".join(briefing["highlights"])
    for number in planted.overdue_numbers:
        assert number in text
    for sku in planted.low_skus:
        assert sku in text
    assert "ORD-2026-000104" not in text  # shipped late: no longer overdue
    assert briefing["metrics"]["Orders overdue"] == "3"
    assert "3 overdue" in briefing["summary"]
    # No patient data in what is e-mailed.
    assert "Planted" not in str(briefing).replace("Planted Lab", "")


async def test_the_briefing_goes_to_active_managers_by_mail_and_notification(env: Env) -> None:
    planted = env.planted
    result = await env.run("daily-briefing", company_id=planted.lab.id, date=TODAY.isoformat())
    managers = sorted(user.id for user in planted.managers)
    assert result["recipients"] == 2
    mails = await env.jobs("email", "daily-briefing")
    assert sorted(job.data["userId"] for job in mails) == managers
    assert {job.data["date"] for job in mails} == {TODAY.isoformat()}
    notes = await env.jobs("notification", "ai-insight-notification")
    assert sorted(job.data["userId"] for job in notes) == managers
    assert {job.data["insightType"] for job in notes} == {"briefing"}
    assert all(job.company_id == planted.lab.id for job in mails + notes)

    # A retry of the same job stores and sends nothing more.
    again = await env.run("daily-briefing", company_id=planted.lab.id, date=TODAY.isoformat())
    assert again["again"] is True
    assert len(await env.results(AIResultKind.BRIEFING)) == 1
    assert len(await env.jobs("email", "daily-briefing")) == 2


async def test_the_briefing_for_chosen_users_refuses_strangers(env: Env) -> None:
    planted = env.planted
    await env.run(
        "daily-briefing",
        company_id=planted.lab.id,
        date=TODAY.isoformat(),
        user_ids=[planted.staff.id],
    )
    mails = await env.jobs("email", "daily-briefing")
    assert [job.data["userId"] for job in mails] == [planted.staff.id]
    with pytest.raises(PermanentJobError, match="not active users"):
        await env.run(
            "daily-briefing",
            "job-2",
            company_id=planted.lab.id,
            date=TODAY.isoformat(),
            user_ids=[planted.inactive_admin.id],
        )
    assert len(await env.results(AIResultKind.BRIEFING)) == 1  # the failed one left nothing


async def test_an_unknown_company_fails_the_job_for_good(env: Env) -> None:
    with pytest.raises(PermanentJobError, match="does not exist"):
        await env.run("daily-briefing", company_id="0" * 32, date=TODAY.isoformat())


# -- demand forecast --------------------------------------------------------------------


async def test_the_forecast_covers_every_stocked_product_and_flags_the_low_ones(env: Env) -> None:
    planted = env.planted
    result, ctx = await env.run_with_context(
        "demand-forecast", company_id=planted.lab.id, forecast_days=14
    )
    (row,) = await env.results(AIResultKind.FORECAST)
    products = {p["sku"]: p for p in row.payload["products"]}
    assert sorted(products) == sorted(planted.stocked_skus)
    assert row.payload["startDay"] == TODAY.isoformat()
    assert row.payload["historyEnd"] == (TODAY - timedelta(days=1)).isoformat()
    for product in products.values():
        assert len(product["daily"]["mean"]) == 14
        total = product["total"]
        assert 0 <= total["lower"] <= total["mean"] <= total["upper"]
    # Planted usage is 12, 6, 8 and 2 a day on average (weekly rhythm around it).
    assert 90 < products["LB-LOW-1"]["total"]["mean"] < 200
    assert products["LB-OK-2"]["total"]["mean"] < products["LB-OK-1"]["total"]["mean"]
    # 10 on hand against ~12 a day and 5 days' lead time: reorder now; 900 on hand: no.
    assert products["LB-LOW-1"]["reorder"]["reorderNow"] is True
    assert products["LB-LOW-1"]["reorder"]["quantity"] > 0
    assert products["LB-OK-1"]["reorder"]["reorderNow"] is False
    assert result["products"] == 4 and result["reorderNow"] >= 1
    assert ctx.progressed[0] == {"done": 0, "total": 4}
    assert ctx.progressed[-1] == {"done": 4, "total": 4}
    notes = await env.jobs("notification", "ai-insight-notification")
    assert {job.data["insightType"] for job in notes} == {"forecast"}
    assert "LB-LOW-1" in notes[0].data["summary"]


async def test_a_forecast_retry_replaces_its_result_and_products_are_checked(env: Env) -> None:
    planted = env.planted
    ok = planted.products["LB-OK-1"].id
    await env.run("demand-forecast", company_id=planted.lab.id, product_ids=[ok])
    await env.run("demand-forecast", company_id=planted.lab.id, product_ids=[ok])
    (row,) = await env.results(AIResultKind.FORECAST)
    assert [p["sku"] for p in row.payload["products"]] == ["LB-OK-1"]
    with pytest.raises(PermanentJobError, match="not stocked"):
        await env.run("demand-forecast", "job-2", company_id=planted.lab.id, product_ids=["9" * 32])


# -- anomalies --------------------------------------------------------------------------


async def test_the_planted_revenue_spike_is_found_explained_and_announced(env: Env) -> None:
    planted = env.planted
    result = await env.run("anomaly-detection", company_id=planted.lab.id, metric_type="revenue")
    rows = await env.results(AIResultKind.ANOMALY)
    yesterday = TODAY - timedelta(days=1)
    spikes = [row for row in rows if row.day == yesterday]
    assert len(spikes) == 1, [row.payload for row in rows]
    found = spikes[0].payload
    assert found["direction"] == "spike" and found["score"] > 5
    assert found["value"] > 3 * found["expected"]
    assert "Revenue" in found["explanation"] and "£" in found["explanation"]
    assert spikes[0].period == "revenue:daily"
    assert result["new"] == len(rows) >= 1
    notes = await env.jobs("notification", "ai-insight-notification")
    assert len(notes) == 2  # one per manager
    assert found["explanation"] in notes[0].data["summary"]

    # The next night's run does not store or announce it again.
    again = await env.run(
        "anomaly-detection", "job-2", company_id=planted.lab.id, metric_type="revenue"
    )
    assert again["new"] == 0
    assert len(await env.results(AIResultKind.ANOMALY)) == len(rows)
    assert len(await env.jobs("notification", "ai-insight-notification")) == 2


async def test_a_metric_without_data_finds_nothing(env: Env) -> None:
    result = await env.run(
        "anomaly-detection", company_id=env.planted.lab.id, metric_type="patients"
    )
    assert result["found"] == 0
    assert await env.results(AIResultKind.ANOMALY) == []


async def test_a_new_companys_first_sales_are_not_anomalies(env: Env) -> None:
    # Keep only the last ten days of invoices: the spike yesterday has no history.
    async with env.sessions() as session, session.begin():
        old = select(Invoice.id).where(Invoice.issued_on < TODAY - timedelta(days=10))
        await session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(old)))
        await session.execute(delete(Invoice).where(Invoice.issued_on < TODAY - timedelta(days=10)))
    result = await env.run(
        "anomaly-detection", company_id=env.planted.lab.id, metric_type="revenue"
    )
    assert result["found"] == 0
    assert await env.jobs("notification", "ai-insight-notification") == []


async def test_weekly_and_monthly_scans_read_complete_periods(env: Env) -> None:
    weekly = await env.run(
        "anomaly-detection",
        company_id=env.planted.lab.id,
        metric_type="inventory",
        time_range="weekly",
    )
    # TODAY is a Friday: the last complete week ended last Sunday.
    assert weekly["window"][1] == (TODAY - timedelta(days=TODAY.weekday() + 1)).isoformat()
    monthly = await env.run(
        "anomaly-detection",
        "job-2",
        company_id=env.planted.lab.id,
        metric_type="orders",
        time_range="monthly",
    )
    assert monthly["window"][1] == "2026-10-31"


# -- insights ---------------------------------------------------------------------------


async def test_operations_insights_state_the_planted_numbers(env: Env) -> None:
    planted = env.planted
    async with env.sessions() as session, session.begin():
        # One of the six planted orders remakes another.
        await session.execute(
            update(Order)
            .where(Order.number == "ORD-2026-000106")
            .values(remake_of_id=planted.orders["ORD-2026-000101"].id)
        )
    start = TODAY - timedelta(days=13)
    await env.run(
        "insight-generation",
        company_id=planted.lab.id,
        insight_type="operations",
        period_start=start.isoformat(),
        period_end=TODAY.isoformat(),
    )
    (row,) = await env.results(AIResultKind.INSIGHT)
    findings = {f["metric"]: f for f in row.payload["findings"]}
    assert findings["orders"]["value"] == 6
    assert "6 orders received" in findings["orders"]["text"]
    assert findings["remake-rate"]["value"] == pytest.approx(1 / 6, abs=1e-3)
    assert "1 of 6 orders" in findings["remake-rate"]["text"]
    # The shipped order took four days.
    assert findings["turnaround-days"]["value"] == pytest.approx(4.0)
    assert findings["overdue-orders"]["value"] == 3
    for number in planted.overdue_numbers:
        assert number in findings["overdue-orders"]["text"]


async def test_inventory_and_revenue_insights_compare_with_the_period_before(env: Env) -> None:
    planted = env.planted
    start, end = TODAY - timedelta(days=28), TODAY - timedelta(days=1)
    for n, kind in enumerate(("inventory", "revenue")):
        await env.run(
            "insight-generation",
            f"job-{n}",
            company_id=planted.lab.id,
            insight_type=kind,
            period_start=start.isoformat(),
            period_end=end.isoformat(),
        )
    rows = {
        row.payload["insightType"]: row.payload for row in await env.results(AIResultKind.INSIGHT)
    }
    inventory = {f["metric"]: f for f in rows["inventory"]["findings"]}
    assert inventory["units-used"]["value"] > 0 and inventory["units-used"]["previous"] > 0
    assert inventory["low-stock"]["value"] == 2
    revenue = rows["revenue"]["findings"]
    assert revenue[0]["metric"] == "revenue" and "£" in revenue[0]["text"]
    assert revenue[0]["changePercent"] is not None
    assert any("Riverside Optics" in f["text"] for f in revenue)


# -- chat -------------------------------------------------------------------------------


async def _conversation(env: Env, question: str) -> tuple[str, str]:
    async with env.sessions() as session, session.begin():
        conversation = Conversation(
            company_id=env.planted.lab.id, user_id=env.planted.managers[0].id
        )
        session.add(conversation)
        await session.flush()
        message = Message(conversation_id=conversation.id, role=MessageRole.USER, content=question)
        session.add(message)
        await session.flush()
        return conversation.id, message.id


async def test_a_chat_answer_is_stored_once_as_the_next_message(env: Env) -> None:
    planted = env.planted
    conversation_id, message_id = await _conversation(env, "Which orders are overdue?")
    fields = {
        "user_id": planted.managers[0].id,
        "company_id": planted.lab.id,
        "conversation_id": conversation_id,
        "message": message_id,
    }
    async with env.system.events.subscribe(ai.CHAT_CHANNEL) as signals:
        result = await env.run("chat-response", **fields)
        assert await signals.get(1.0) == conversation_id
    assert result["answered"] is True
    again = await env.run("chat-response", **fields)
    assert again["again"] is True
    async with env.sessions() as session:
        answers = list(
            await session.scalars(select(Message).where(Message.role == MessageRole.ASSISTANT))
        )
    assert len(answers) == 1 and answers[0].job_id == "job-1"
    for number in planted.overdue_numbers:
        assert number in answers[0].content


async def test_a_chat_job_for_someone_elses_conversation_fails(env: Env) -> None:
    conversation_id, message_id = await _conversation(env, "Revenue last month?")
    with pytest.raises(PermanentJobError, match="not one of user"):
        await env.run(
            "chat-response",
            user_id=env.planted.staff.id,
            company_id=env.planted.lab.id,
            conversation_id=conversation_id,
            message=message_id,
        )


async def test_low_stock_changes_show_in_the_next_briefing(env: Env) -> None:
    planted = env.planted
    async with env.sessions() as session, session.begin():
        await session.execute(
            update(StockLevel)
            .where(StockLevel.product_id == planted.products["LB-LOW-2"].id)
            .values(on_hand=500)
        )
    await env.run("daily-briefing", company_id=planted.lab.id, date=TODAY.isoformat())
    (row,) = await env.results(AIResultKind.BRIEFING)
    assert [item["sku"] for item in row.payload["attention"]["lowStock"]] == ["LB-LOW-1"]
