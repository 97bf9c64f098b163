"""Chat answers on the demo network: every figure checked against SQL of the test's own.

The expected figures are computed here with plain queries over the same tables (not
with ``facts``), so an answer that drifts from the data fails. The network is the
demo one (``conftest``); rows a test adds are rolled back after it.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import Invoice, InvoiceLine, InvoiceStatus
from ils.domain.clinical import Examination
from ils.domain.companies import Company
from ils.domain.content import AIResult, AIResultKind
from ils.domain.orders import Order, OrderStatus, OrderStatusChange
from ils.domain.supply import DailySale, Product, StockLevel
from tests.workers.ai.conftest import TODAY, ask, bounds, pounds, short

CLOSED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED)


# -- ten questions about the lab's and a practice's data ----------------------------------


async def test_revenue_last_month(session: AsyncSession, lab: Company) -> None:
    net, count = (
        await session.execute(
            select(
                func.sum(InvoiceLine.quantity * InvoiceLine.unit_price_cents),
                func.count(func.distinct(Invoice.id)),
            )
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.company_id == lab.id,
                Invoice.status != InvoiceStatus.VOID,
                Invoice.issued_on.between(date(2026, 10, 1), date(2026, 10, 31)),
            )
        )
    ).one()
    answer = await ask(session, lab, "What was our revenue last month?")
    assert (answer.intent, answer.answered) == ("revenue", True)
    assert "October 2026" in answer.text
    assert pounds(net) in answer.text
    assert f"{count} invoices" in answer.text
    assert answer.facts["revenueCents"] == net


async def test_orders_received_yesterday_and_this_week(session: AsyncSession, lab: Company) -> None:
    for question, first in (
        ("How many orders did we receive yesterday?", TODAY - timedelta(days=1)),
        ("How many orders came in this week?", TODAY - timedelta(days=TODAY.weekday())),
    ):
        last = TODAY - timedelta(days=1) if "yesterday" in question else TODAY
        start, after = bounds(lab, first, last)
        expected = await session.scalar(
            select(func.count(Order.id)).where(
                Order.lab_id == lab.id, Order.created_at >= start, Order.created_at < after
            )
        )
        answer = await ask(session, lab, question)
        assert answer.intent == "orders-count"
        assert answer.text.startswith(f"{expected} orders received"), answer.text
        assert short(first) in answer.text


async def test_orders_in_production_are_counted_and_named(
    session: AsyncSession, lab: Company
) -> None:
    numbers = list(
        await session.scalars(
            select(Order.number)
            .where(Order.lab_id == lab.id, Order.status == OrderStatus.IN_PRODUCTION)
            .order_by(Order.due_date, Order.number)
        )
    )
    answer = await ask(session, lab, "Which orders are in production right now?")
    assert answer.text.startswith(f"{len(numbers)} orders are in production")
    for number in numbers[:10]:
        assert number in answer.text
    if len(numbers) > 10:
        assert f"and {len(numbers) - 10} more" in answer.text


async def test_overdue_orders_are_listed(session: AsyncSession, lab: Company) -> None:
    overdue = list(
        await session.scalars(
            select(Order.number)
            .where(Order.lab_id == lab.id, Order.due_date < TODAY, Order.status.not_in(CLOSED))
            .order_by(Order.due_date, Order.number)
        )
    )
    assert overdue, "the demo network has overdue orders"
    answer = await ask(session, lab, "Which orders are overdue?")
    assert answer.intent == "overdue-orders"
    assert answer.facts["count"] == len(overdue)
    assert f"{len(overdue)} order" in answer.text
    for number in overdue[:10]:
        assert number in answer.text


async def test_status_and_due_date_of_one_order(session: AsyncSession, lab: Company) -> None:
    order, practice_name = (
        await session.execute(
            select(Order, Company.name)
            .join(Company, Company.id == Order.company_id)
            .where(Order.lab_id == lab.id, Order.status == OrderStatus.ACCEPTED)
            .order_by(Order.number)
            .limit(1)
        )
    ).one()
    number = order.number.lower().replace("-0", "-", 1)  # "ord-2026-..." as typed
    answer = await ask(session, lab, f"where is {number}?")
    assert answer.intent == "order-status"
    assert f"Order {order.number} is accepted" in answer.text
    assert f"due {short(order.due_date)}" in answer.text
    assert practice_name in answer.text


async def test_outstanding_invoices(session: AsyncSession, lab: Company) -> None:
    unpaid = (
        await session.scalars(
            select(Invoice).where(
                Invoice.company_id == lab.id,
                Invoice.status.in_((InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)),
            )
        )
    ).all()
    owed = [invoice.balance_cents() for invoice in unpaid if invoice.balance_cents() > 0]
    late = [i.balance_cents() for i in unpaid if i.balance_cents() > 0 and i.due_on < TODAY]
    answer = await ask(session, lab, "How much is outstanding on unpaid invoices?")
    assert answer.intent == "receivables"
    assert f"{pounds(sum(owed))} on {len(owed)} unpaid invoices" in answer.text
    assert pounds(sum(late)) in answer.text


async def test_stock_of_a_product_named_loosely(session: AsyncSession, lab: Company) -> None:
    on_hand = await session.scalar(
        select(StockLevel.on_hand)
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.company_id == lab.id, Product.sku == "SV-160")
    )
    for question in ("How many single vision 1.6 blanks do we have?", "stock of sv160?"):
        answer = await ask(session, lab, question)
        assert answer.intent == "stock-level"
        assert f"SV-160 Single vision 1.60 blank: {on_hand} on hand" in answer.text


async def test_low_stock_products(session: AsyncSession, lab: Company) -> None:
    low = set(
        await session.scalars(
            select(Product.sku)
            .join(StockLevel, StockLevel.product_id == Product.id)
            .where(StockLevel.company_id == lab.id, StockLevel.on_hand <= StockLevel.reorder_point)
        )
    )
    answer = await ask(session, lab, "Which products are running low?")
    assert answer.intent == "low-stock"
    assert {p["sku"] for p in answer.facts["products"]} == low
    for sku in low:
        assert sku in answer.text


async def test_top_product_by_units_used(session: AsyncSession, lab: Company) -> None:
    used = func.sum(DailySale.units)
    sku, units = (
        await session.execute(
            select(Product.sku, used)
            .join(DailySale, DailySale.product_id == Product.id)
            .where(DailySale.company_id == lab.id, DailySale.day > TODAY - timedelta(days=30))
            .group_by(Product.sku)
            .order_by(used.desc())
            .limit(1)
        )
    ).one()
    answer = await ask(session, lab, "What was our most used product in the last 30 days?")
    assert answer.intent == "top-products"
    assert answer.text.split(": ", 1)[1].startswith(f"{sku} ")
    assert f"{units} units" in answer.text


async def test_usage_of_a_named_product_in_a_month(session: AsyncSession, lab: Company) -> None:
    units = await session.scalar(
        select(func.sum(DailySale.units))
        .join(Product, Product.id == DailySale.product_id)
        .where(
            DailySale.company_id == lab.id,
            Product.sku == "PR-150",
            DailySale.day.between(date(2026, 10, 1), date(2026, 10, 31)),
        )
    )
    answer = await ask(session, lab, "How many progressive 1.50 blanks did we use in October?")
    assert (
        answer.text == f"Units used in October 2026: PR-150 Progressive 1.50 blank, {units} units."
    )


async def test_orders_shipped_last_week_count_status_changes(
    session: AsyncSession, lab: Company
) -> None:
    monday = TODAY - timedelta(days=TODAY.weekday() + 7)
    start, after = bounds(lab, monday, monday + timedelta(days=6))
    shipped = await session.scalar(
        select(func.count(func.distinct(OrderStatusChange.order_id)))
        .join(Order, Order.id == OrderStatusChange.order_id)
        .where(
            Order.lab_id == lab.id,
            OrderStatusChange.to_status == OrderStatus.SHIPPED,
            OrderStatusChange.changed_at >= start,
            OrderStatusChange.changed_at < after,
        )
    )
    answer = await ask(session, lab, "How many orders did we ship last week?")
    assert answer.text.startswith(f"{shipped} orders shipped last week ({short(monday)}")


async def test_only_product_demand_is_forecast(session: AsyncSession, lab: Company) -> None:
    answer = await ask(session, lab, "What's the revenue forecast for next month?")
    assert (answer.intent, answer.answered) == ("forecast", False)
    assert "Only product demand is forecast" in answer.text


async def test_median_turnaround(session: AsyncSession, lab: Company) -> None:
    start, after = bounds(lab, TODAY - timedelta(days=29), TODAY)
    shipped = (
        select(OrderStatusChange.order_id, func.min(OrderStatusChange.changed_at).label("at"))
        .where(OrderStatusChange.to_status == OrderStatus.SHIPPED)
        .group_by(OrderStatusChange.order_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(Order.created_at, shipped.c.at)
            .join(shipped, shipped.c.order_id == Order.id)
            .where(Order.lab_id == lab.id)
        )
    ).all()
    days = [
        (at.replace(tzinfo=UTC) - created).total_seconds() / 86400
        for created, at in rows
        if start <= at.replace(tzinfo=UTC) < after
    ]
    answer = await ask(session, lab, "What's our median turnaround in the last 30 days?")
    assert answer.intent == "turnaround"
    assert f"{statistics.median(days):.1f} days" in answer.text
    assert f"over {len(days)} shipped orders" in answer.text


async def test_remake_rate(session: AsyncSession, lab: Company) -> None:
    start, after = bounds(lab, TODAY - timedelta(days=29), TODAY)
    recent = (
        await session.scalars(
            select(Order)
            .where(Order.lab_id == lab.id, Order.created_at >= start, Order.remake_of_id.is_(None))
            .order_by(Order.number)
            .limit(2)
        )
    ).all()
    original = await session.scalar(select(Order.id).order_by(Order.number).limit(1))
    for order in recent:  # two more remakes, whatever the demo holds
        order.remake_of_id = original
    await session.flush()
    in_window = (Order.lab_id == lab.id, Order.created_at >= start, Order.created_at < after)
    total = await session.scalar(select(func.count(Order.id)).where(*in_window))
    remade = await session.scalar(select(func.count(Order.remake_of_id)).where(*in_window))
    assert total and remade and remade >= 2
    answer = await ask(session, lab, "What is our remake rate over the last 30 days?")
    assert answer.intent == "remake-rate"
    assert f"{remade / total:.1%} ({remade} of {total} orders" in answer.text


async def test_examinations_this_month_at_a_practice(
    session: AsyncSession, practice: Company
) -> None:
    start, after = bounds(practice, TODAY.replace(day=1), TODAY)
    count = await session.scalar(
        select(func.count(Examination.id)).where(
            Examination.company_id == practice.id,
            Examination.examined_at >= start,
            Examination.examined_at < after,
        )
    )
    answer = await ask(session, practice, "How many eye exams did we do this month?")
    assert answer.intent == "examinations"
    assert f"recorded {count} eye examination" in answer.text
    assert answer.facts["examinations"] == count


# -- stored AI results ----------------------------------------------------------------------


def forecast_payload(sku: str, mean: float, *, reorder_now: bool) -> dict[str, Any]:
    return {
        "forecastDays": 30,
        "startDay": (TODAY + timedelta(days=1)).isoformat(),
        "level": 0.9,
        "products": [
            {
                "productId": "p1",
                "sku": sku,
                "name": "Single vision 1.60 blank",
                "demandClass": "smooth",
                "method": "holt-winters",
                "onHand": 35,
                "leadTimeDays": 4,
                "total": {"mean": mean, "lower": mean - 30, "upper": mean + 30},
                "reorder": {
                    "quantity": 300,
                    "orderUpTo": 335,
                    "daysOfCover": 4.2,
                    "stockoutInDays": 4,
                    "reorderNow": reorder_now,
                },
            }
        ],
    }


async def test_the_newest_forecast_answers(session: AsyncSession, lab: Company) -> None:
    old = datetime.combine(TODAY - timedelta(days=7), time(3), UTC)
    new = datetime.combine(TODAY, time(3), UTC)
    for created, mean in ((old, 111.0), (new, 270.0)):
        session.add(
            AIResult(
                company_id=lab.id,
                kind=AIResultKind.FORECAST,
                period="2026-11",
                payload=forecast_payload("SV-160", mean, reorder_now=True),
                created_at=created,
            )
        )
    await session.flush()
    answer = await ask(session, lab, "What's the demand forecast for single vision 1.60?")
    assert (answer.intent, answer.answered) == ("forecast", True)
    assert "about 270 units (90% interval 240 to 300)" in answer.text
    assert "111" not in answer.text
    assert "35 on hand" in answer.text
    reorder = await ask(session, lab, "What should we reorder?")
    assert reorder.intent == "reorder"
    assert "SV-160" in reorder.text
    assert "300 units suggested" in reorder.text


async def test_without_a_forecast_the_answer_says_so(session: AsyncSession, lab: Company) -> None:
    answer = await ask(session, lab, "Forecast demand for the next 30 days")
    assert (answer.intent, answer.answered) == ("forecast", False)
    assert "No demand forecast" in answer.text


async def test_anomalies_of_the_period_are_explained(session: AsyncSession, lab: Company) -> None:
    spike_day, old_day = TODAY - timedelta(days=3), TODAY - timedelta(days=90)
    for day, value in ((spike_day, 812_000), (old_day, 5)):
        session.add(
            AIResult(
                company_id=lab.id,
                kind=AIResultKind.ANOMALY,
                day=day,
                period="revenue:daily",
                payload={
                    "metric": "revenue",
                    "timeRange": "daily",
                    "period": day.isoformat(),
                    "value": value,
                    "expected": 200_000,
                    "score": 7.5,
                    "direction": "spike",
                    "explanation": f"Revenue on {short(day)} was four times the usual.",
                },
            )
        )
    await session.flush()
    answer = await ask(session, lab, "Anything unusual in revenue in the last two weeks?")
    assert answer.intent == "anomalies"
    assert answer.facts["count"] == 1
    assert f"{short(spike_day)}, revenue spike" in answer.text
    assert "four times the usual" in answer.text
    assert short(old_day) not in answer.text
    orders_only = await ask(session, lab, "Any order anomalies in the last two weeks?")
    assert orders_only.text.startswith("No anomalies")
