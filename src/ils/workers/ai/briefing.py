"""The daily briefing: yesterday's figures and what needs attention today.

Written for the people who open the lab or practice in the morning. Every line is a
computed fact with its number (orders by number, stock by SKU), never patient data,
because the briefing is e-mailed. The stored payload has the shape the e-mail
template reads (``summary``, ``metrics``, ``highlights``, ``recommendations``) plus
an ``attention`` object with the structured lists, for the web app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind
from ils.workers.ai import facts, stored
from ils.workers.ai.facts import OrderFact, Period, StockFact, money, short_date
from ils.workers.ai.results import plural

#: How many order numbers or products a sentence names before "and N more".
NAMED: int = 5
#: Anomalies of the last this many days are repeated in the briefing.
ANOMALY_DAYS: int = 7


@dataclass
class Briefing:
    """A briefing under construction; :meth:`payload` is what is stored."""

    day: date
    metrics: dict[str, str] = field(default_factory=dict)
    summary_parts: list[str] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    attention: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON stored in ``ai_results`` and read by the e-mail and the web app."""
        return {
            "date": self.day.isoformat(),
            "summary": " ".join(self.summary_parts),
            "metrics": self.metrics,
            "highlights": self.highlights,
            "recommendations": self.recommendations,
            "attention": self.attention,
        }


def _numbers(orders: list[OrderFact]) -> str:
    named = ", ".join(order.number for order in orders[:NAMED])
    more = len(orders) - NAMED
    return f"{named} and {more} more" if more > 0 else named


def _order_json(order: OrderFact) -> dict[str, Any]:
    return {
        "orderId": order.id,
        "number": order.number,
        "status": order.status.value,
        "dueDate": order.due_date.isoformat() if order.due_date else None,
        "counterparty": order.counterparty,
    }


def _stock_json(item: StockFact) -> dict[str, Any]:
    return {
        "productId": item.product_id,
        "sku": item.sku,
        "name": item.name,
        "onHand": item.on_hand,
        "reorderPoint": item.reorder_point,
    }


def _change(now: float, before: float) -> str:
    """`` (up 12% on last Monday)``; empty when there is nothing to compare."""
    if before <= 0:
        return ""
    percent = round((now - before) / before * 100)
    if percent == 0:
        return " (the same as a week before)"
    return f" ({'up' if percent > 0 else 'down'} {abs(percent)}% on a week before)"


async def build_briefing(session: AsyncSession, company: Company, day: date) -> Briefing:
    """The briefing of ``company`` for the morning of ``day`` (its local date)."""
    briefing = Briefing(day)
    yesterday = Period.day(day - timedelta(days=1))
    await _yesterday(session, company, yesterday, briefing)
    await _orders_needing_attention(session, company, day, briefing)
    if company.kind is CompanyKind.LAB:
        await _stock_needing_attention(session, company, briefing)
    await _money_needing_attention(session, company, day, briefing)
    await _recent_anomalies(session, company, day, briefing)
    if not briefing.highlights:
        briefing.highlights.append("Nothing needs attention today.")
    return briefing


async def _yesterday(
    session: AsyncSession, company: Company, yesterday: Period, briefing: Briefing
) -> None:
    week_before = Period.day(yesterday.start - timedelta(days=7))
    received = "received" if company.kind is CompanyKind.LAB else "placed"
    orders = await facts.orders_created(session, company, yesterday)
    orders_before = await facts.orders_created(session, company, week_before)
    revenue = await facts.revenue_cents(session, company, yesterday)
    revenue_before = await facts.revenue_cents(session, company, week_before)
    paid = await facts.payments_cents(session, company, yesterday)
    briefing.metrics[f"Orders {received} yesterday"] = str(orders)
    parts = [f"{plural(orders, 'order')} {received}{_change(orders, orders_before)}"]
    if company.kind is CompanyKind.LAB:
        shipped = await facts.orders_shipped(session, company, yesterday)
        briefing.metrics["Orders shipped yesterday"] = str(shipped)
        parts.append(f"{shipped} shipped")
    if company.kind is CompanyKind.PRACTICE:
        examined = await facts.examinations(session, company, yesterday)
        briefing.metrics["Examinations yesterday"] = str(examined)
        parts.append(f"{plural(examined, 'examination')}")
    briefing.metrics["Invoiced yesterday (net)"] = money(revenue)
    briefing.metrics["Payments received yesterday"] = money(paid)
    parts.append(f"{money(revenue)} invoiced{_change(revenue, revenue_before)}")
    parts.append(f"{money(paid)} received")
    briefing.summary_parts.append(
        f"Yesterday ({yesterday.start:%a} {short_date(yesterday.start)}): " + ", ".join(parts) + "."
    )


async def _orders_needing_attention(
    session: AsyncSession, company: Company, day: date, briefing: Briefing
) -> None:
    due = await facts.orders_due_on(session, company, day)
    overdue = await facts.overdue_orders(session, company, day)
    held = await facts.orders_on_hold(session, company)
    briefing.metrics["Orders due today"] = str(len(due))
    briefing.metrics["Orders overdue"] = str(len(overdue))
    briefing.attention["dueToday"] = [_order_json(o) for o in due]
    briefing.attention["overdueOrders"] = [_order_json(o) for o in overdue]
    briefing.attention["onHold"] = [_order_json(o) for o in held]
    today = [f"{plural(len(due), 'order')} due", f"{len(overdue)} overdue"]
    if overdue:
        oldest = overdue[0]
        late_days = (day - oldest.due_date).days if oldest.due_date else 0
        briefing.highlights.append(
            f"{plural(len(overdue), 'order is', 'orders are')} overdue: {_numbers(overdue)}"
            f" (the oldest, {oldest.number}, by {plural(late_days, 'day')})."
        )
        briefing.recommendations.append(
            f"Chase the {len(overdue)} overdue {'order' if len(overdue) == 1 else 'orders'} "
            f"first: {_numbers(overdue)}."
        )
    if due:
        briefing.highlights.append(f"{plural(len(due), 'order')} due today: {_numbers(due)}.")
    if held:
        briefing.highlights.append(f"{plural(len(held), 'order')} on hold: {_numbers(held)}.")
        today.append(f"{len(held)} on hold")
    briefing.summary_parts.append("Today: " + ", ".join(today) + ".")


async def _stock_needing_attention(
    session: AsyncSession, company: Company, briefing: Briefing
) -> None:
    low = await facts.low_stock(session, company)
    briefing.metrics["Products low on stock"] = str(len(low))
    briefing.attention["lowStock"] = [_stock_json(item) for item in low]
    if not low:
        return
    named = "; ".join(
        f"{item.sku} {item.name} ({item.on_hand} left, reorder at {item.reorder_point})"
        for item in low[:NAMED]
    )
    more = f"; and {len(low) - NAMED} more" if len(low) > NAMED else ""
    briefing.highlights.append(f"Low stock: {named}{more}.")
    briefing.recommendations.append(
        f"Reorder the {plural(len(low), 'product')} at or below the reorder point"
        f", starting with {low[0].sku} {low[0].name}."
    )
    briefing.summary_parts.append(f"{plural(len(low), 'product')} low on stock.")


async def _money_needing_attention(
    session: AsyncSession, company: Company, day: date, briefing: Briefing
) -> None:
    owed = await facts.receivables(session, company, day)
    briefing.attention["overdueInvoices"] = list(owed.overdue_numbers)
    if owed.overdue:
        briefing.metrics["Overdue invoices"] = f"{owed.overdue} ({money(owed.overdue_cents)})"
        briefing.recommendations.append(
            f"Follow up {plural(owed.overdue, 'overdue invoice')} worth "
            f"{money(owed.overdue_cents)} in total."
        )


async def _recent_anomalies(
    session: AsyncSession, company: Company, day: date, briefing: Briefing
) -> None:
    recent = Period(day - timedelta(days=ANOMALY_DAYS), day - timedelta(days=1))
    found = await stored.anomalies(session, company, recent)
    sentences = [s for s in dict.fromkeys(a.explanation for a in found) if s]
    briefing.attention["anomalies"] = sentences
    briefing.highlights.extend(f"Unusual: {s}" for s in sentences[:NAMED])
