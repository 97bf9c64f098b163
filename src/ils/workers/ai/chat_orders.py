"""The answers to questions about orders: status, counts, overdue, due, turnaround, remakes.

Counts follow the company's side of an order (a lab's orders received, a practice's
orders placed). With a status and a period, "how many orders shipped last week"
counts status changes in the period, while "orders received last week that are now
shipped" counts arrivals by their current status (see
:func:`~ils.workers.ai.chat_questions.counts_arrivals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Final

from ils.domain.companies import Company, CompanyKind
from ils.domain.orders import OrderStatus
from ils.workers.ai import facts
from ils.workers.ai.chat_answers import (
    NAMED,
    RECENT_DAYS,
    Ask,
    ChatAnswer,
    listed,
    order_json,
    period_json,
    received_verb,
    reply,
)
from ils.workers.ai.chat_periods import AskedPeriod, last_days
from ils.workers.ai.chat_questions import OPEN, counts_arrivals
from ils.workers.ai.facts import OrderFact, Period, short_date
from ils.workers.ai.results import plural

#: Longest span "orders due ..." covers (one query a day).
DUE_DAYS: Final = 31
STATUS_TEXT: Final = MappingProxyType(
    {
        OrderStatus.SUBMITTED: "submitted (not yet accepted)",
        OrderStatus.ACCEPTED: "accepted",
        OrderStatus.IN_PRODUCTION: "in production",
        OrderStatus.QUALITY_CHECK: "in quality check",
        OrderStatus.SHIPPED: "shipped",
        OrderStatus.DELIVERED: "delivered",
        OrderStatus.CANCELLED: "cancelled",
        OrderStatus.ON_HOLD: "on hold",
    }
)


async def order_status(ask: Ask) -> ChatAnswer:
    """Status and due date of each order number asked about (up to five); another
    company's number reads exactly like one that does not exist."""
    sentences, found = [], []
    for number in ask.question.order_numbers[:5]:
        order = await facts.order_by_number(ask.session, ask.company, number)
        if order is None:
            sentences.append(f"I can't find order {number} in your company's orders.")
            continue
        found.append(order_json(order))
        sentences.append(_order_sentence(ask.company, order, ask.question.today))
    return reply("order-status", " ".join(sentences), {"orders": found}, answered=bool(found))


def _order_sentence(company: Company, order: OrderFact, today: date) -> str:
    side = "from" if company.kind is CompanyKind.LAB else "with"
    text = f"Order {order.number} is {STATUS_TEXT[order.status]}"
    if order.due_date and order.status in OPEN:
        late = ", overdue" if order.due_date < today else ""
        text += f"; due {short_date(order.due_date)}{late}"
    return f"{text} ({side} {order.counterparty})."


async def orders_count(ask: Ask) -> ChatAnswer:
    """Orders received or placed in the period, by status if one is named; without a
    period, the orders in each status now."""
    statuses, asked = ask.question.statuses, ask.question.period
    if asked is None:
        return await _orders_now(ask, statuses)
    data: dict[str, Any] = {"period": period_json(asked)}
    received = received_verb(ask.company)
    if statuses and statuses != OPEN and not counts_arrivals(ask.question):
        counts = {
            s: await facts.orders_moved_to(ask.session, ask.company, asked.period, s)
            for s in statuses
        }
        parts = [f"{plural(n, 'order')} {_moved(s)}" for s, n in counts.items()]
        text = f"{listed(parts)} {asked.label}."
        return reply(
            "orders-count", text, {**data, "movedTo": {s.value: n for s, n in counts.items()}}
        )
    total = await facts.orders_created(ask.session, ask.company, asked.period)
    text = f"{plural(total, 'order')} {received} {asked.label}."
    data["orders"] = total
    if statuses:
        now = await facts.orders_created(ask.session, ask.company, asked.period, statuses)
        names = _status_names(statuses)
        text = f"{plural(total, 'order')} {received} {asked.label}; {now} of them are now {names}."
        data["nowInStatuses"] = now
    return reply("orders-count", text, data)


def _status_names(statuses: Sequence[OrderStatus]) -> str:
    """``in production or in quality check``; ``still open`` for every open status."""
    return (
        "still open" if tuple(statuses) == OPEN else " or ".join(STATUS_TEXT[s] for s in statuses)
    )


def _moved(status: OrderStatus) -> str:
    """How an order got into ``status``: "shipped", "put on hold"..."""
    verbs = {
        OrderStatus.SUBMITTED: "submitted",
        OrderStatus.IN_PRODUCTION: "moved into production",
        OrderStatus.QUALITY_CHECK: "moved to quality check",
        OrderStatus.ON_HOLD: "put on hold",
    }
    return verbs.get(status, STATUS_TEXT[status])


async def _orders_now(ask: Ask, statuses: Sequence[OrderStatus]) -> ChatAnswer:
    counts = await facts.orders_by_status(ask.session, ask.company)
    if not statuses:
        open_count = sum(counts.get(s, 0) for s in OPEN)
        parts = ", ".join(f"{counts.get(s, 0)} {STATUS_TEXT[s]}" for s in OPEN)
        text = f"You have {plural(open_count, 'open order')}: {parts}."
        return reply("orders-count", text, {"byStatus": {s.value: n for s, n in counts.items()}})
    total = sum(counts.get(s, 0) for s in statuses)
    names = _status_names(statuses)
    orders = await facts.orders_in_statuses(ask.session, ask.company, statuses)
    listing = f": {listed([o.number for o in orders], total)}" if total else ""
    verb = "is" if total == 1 else "are"
    text = f"{plural(total, 'order')} {verb} {names} now{listing}."
    data = {"statuses": [s.value for s in statuses], "count": total, "orders": _numbers(orders)}
    return reply("orders-count", text, data)


def _numbers(orders: Sequence[OrderFact]) -> list[str]:
    return [order.number for order in orders[:NAMED]]


async def overdue(ask: Ask) -> ChatAnswer:
    """Open orders past their due date, the longest overdue first."""
    today = ask.question.today
    orders = await facts.overdue_orders(ask.session, ask.company, today)
    data = {"today": today.isoformat(), "orders": [order_json(o) for o in orders[:NAMED]]}
    if not orders:
        return reply("overdue-orders", "No orders are overdue.", {**data, "count": 0})
    at_least = "At least " if len(orders) >= facts.LIST_LIMIT else ""
    described = [
        f"{o.number} (due {short_date(o.due_date)}, {STATUS_TEXT[o.status]})"
        for o in orders
        if o.due_date
    ]
    verb = "is" if len(orders) == 1 else "are"
    text = f"{at_least}{plural(len(orders), 'order')} {verb} overdue: {listed(described)}."
    return reply("overdue-orders", text, {**data, "count": len(orders)})


async def orders_due(ask: Ask) -> ChatAnswer:
    """Open orders due in the period (today by default)."""
    today = ask.question.today
    asked = ask.period(AskedPeriod(Period.day(today), f"today ({short_date(today)})"))
    if asked.period.days > DUE_DAYS:  # one query a day: keep it to a month
        span = Period(asked.period.start, asked.period.start + timedelta(days=DUE_DAYS - 1))
        asked = AskedPeriod(span, f"from {span.label()}")
    days = [asked.period.start + timedelta(days=i) for i in range(asked.period.days)]
    orders = [o for d in days for o in await facts.orders_due_on(ask.session, ask.company, d)]
    data = {"period": period_json(asked), "orders": [order_json(o) for o in orders[:NAMED]]}
    verb = "is" if len(orders) == 1 else "are"
    listing = f": {listed([o.number for o in orders])}" if orders else ""
    text = f"{plural(len(orders), 'open order')} {verb} due {asked.label}{listing}."
    return reply("orders-due", text, {**data, "count": len(orders)})


async def turnaround(ask: Ask) -> ChatAnswer:
    """Median days from order to shipping of the orders shipped in the period."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    days = await facts.turnaround_days(ask.session, ask.company, asked.period)
    middle = facts.median(days)
    data = {"period": period_json(asked), "shippedOrders": len(days)}
    if middle is None:
        return reply("turnaround", f"No orders were shipped {asked.label}.", data)
    text = (
        f"Median turnaround {asked.label}: {middle:.1f} days from order to shipping, "
        f"over {plural(len(days), 'shipped order')}."
    )
    return reply("turnaround", text, {**data, "medianDays": round(middle, 2)})


async def remakes(ask: Ask) -> ChatAnswer:
    """Share of the orders of the period that remake an earlier one."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    found = await facts.remakes(ask.session, ask.company, asked.period)
    data = {"period": period_json(asked), "remakes": found.remakes, "orders": found.orders}
    if found.rate is None:
        return reply(
            "remake-rate", f"No orders were {received_verb(ask.company)} {asked.label}.", data
        )
    text = (
        f"Remake rate {asked.label}: {found.rate:.1%} "
        f"({found.remakes} of {plural(found.orders, 'order')} were remakes)."
    )
    return reply("remake-rate", text, {**data, "rate": round(found.rate, 4)})
