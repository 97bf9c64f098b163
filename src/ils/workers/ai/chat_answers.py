"""What every chat answer is made of, and the answers about money, stock and patients.

:class:`ChatAnswer` is what :func:`~ils.workers.ai.chat.answer_question` returns; each
intent's handler takes an :class:`Ask` (who asks, what was understood) and builds one.
The handlers here cover money (revenue, payments, what is owed), stock (levels, low
stock, usage, forecasts, reorders), anomalies and examinations; order questions are
in :mod:`~ils.workers.ai.chat_orders`. Each reads its figures with
:mod:`ils.workers.ai.facts`, scoped to the asking company, and quotes them: money
with :func:`~ils.workers.ai.facts.money`, dates with
:func:`~ils.workers.ai.facts.short_date`, and the period counted spelled out, so a
reader can check the figure. Products are named by SKU; nothing here reads a patient.

When a question names no period, the default is this month so far for money and
examinations, and the last 30 days for usage and anomalies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind
from ils.workers.ai import facts, stored
from ils.workers.ai.chat_periods import AskedPeriod, last_days, this_month
from ils.workers.ai.chat_questions import (
    Question,
    asks_what_is_owed,
    match_products,
    metrics_named,
)
from ils.workers.ai.facts import OrderFact, StockFact, money, short_date
from ils.workers.ai.results import plural

#: How many orders, invoices or products an answer names before "and N more".
NAMED: Final = 10
#: The default window of rates and rankings (turnaround, remakes, top products).
RECENT_DAYS: Final = 30
NO_FORECAST: Final = "No demand forecast has been made for your company yet."


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A reply and what it rests on; ``facts`` hold identifiers and figures only
    (order numbers, SKUs, amounts), never a patient's name or prescription."""

    text: str
    intent: str
    answered: bool
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ask:
    """One question being answered: who asks, and what they asked."""

    session: AsyncSession
    company: Company
    question: Question

    @property
    def text(self) -> str:
        """The question, lower-cased (what the rules and product matching read)."""
        return self.question.text

    def period(self, default: AskedPeriod) -> AskedPeriod:
        """The period asked for, else the intent's ``default``."""
        return self.question.period or default


# -- helpers ----------------------------------------------------------------------------


def reply(intent: str, text: str, data: dict[str, Any], *, answered: bool = True) -> ChatAnswer:
    """An answer of ``intent`` with its facts (answered unless said otherwise)."""
    return ChatAnswer(text, intent, answered, data)


def period_json(asked: AskedPeriod) -> dict[str, str]:
    """The period as facts record it: ISO dates, both included."""
    return {"start": asked.period.start.isoformat(), "end": asked.period.end.isoformat()}


def listed(items: Sequence[str], total: int | None = None) -> str:
    """``A, B, C`` and, past :data:`NAMED`, ``and N more``."""
    total = len(items) if total is None else total
    shown = ", ".join(items[:NAMED])
    return f"{shown} and {total - NAMED} more" if total > NAMED else shown


def order_json(order: OrderFact) -> dict[str, Any]:
    """An order as facts record it: number, status, due date (nothing about the patient)."""
    due = order.due_date.isoformat() if order.due_date else None
    return {"number": order.number, "status": order.status.value, "dueDate": due}


def _stock_json(item: StockFact) -> dict[str, Any]:
    return {"sku": item.sku, "onHand": item.on_hand, "reorderPoint": item.reorder_point}


def _product(item: StockFact | stored.ProductForecast) -> str:
    return f"{item.sku} {item.name}"


def received_verb(company: Company) -> str:
    """How the company gets orders: a lab receives them, a practice places them."""
    return "received" if company.kind is CompanyKind.LAB else "placed"


# -- money ------------------------------------------------------------------------------


async def revenue(ask: Ask) -> ChatAnswer:
    """Net revenue invoiced in the period, with the invoice count to check it by."""
    asked = ask.period(this_month(ask.question.today))
    cents = await facts.revenue_cents(ask.session, ask.company, asked.period)
    count = await facts.invoices_issued(ask.session, ask.company, asked.period)
    text = (
        f"Revenue invoiced {asked.label}: {money(cents)} net of VAT, "
        f"over {plural(count, 'invoice')}."
    )
    data = {"period": period_json(asked), "revenueCents": cents, "revenue": money(cents)}
    return reply("revenue", text, {**data, "invoices": count})


async def payments(ask: Ask) -> ChatAnswer:
    """Payments received in the period."""
    asked = ask.period(this_month(ask.question.today))
    cents = await facts.payments_cents(ask.session, ask.company, asked.period)
    text = f"Payments received {asked.label}: {money(cents)}."
    data = {"period": period_json(asked), "paymentsCents": cents, "payments": money(cents)}
    return reply("payments", text, data)


async def receivables(ask: Ask) -> ChatAnswer:
    """What customers owe the company, or what it owes (see ``asks_what_is_owed``)."""
    today = ask.question.today
    payable = asks_what_is_owed(ask.question, ask.company.kind)
    fact = facts.payables if payable else facts.receivables
    owed = await fact(ask.session, ask.company, today)
    who = "Your company owes" if payable else "Customers owe your company"
    data = {"direction": "payable" if payable else "receivable", **asdict(owed)}
    if not owed.unpaid:
        return reply("receivables", f"{who} nothing: there are no unpaid invoices.", data)
    text = f"{who} {money(owed.outstanding_cents)} on {plural(owed.unpaid, 'unpaid invoice')}"
    if owed.overdue:
        late = listed(owed.overdue_numbers, owed.overdue)
        text += f"; {money(owed.overdue_cents)} of it is past due ({late})"
    return reply("receivables", text + ".", data)


# -- stock ------------------------------------------------------------------------------


def _stock_line(item: StockFact) -> str:
    low = "; at or below its reorder point" if item.low else ""
    return f"{_product(item)}: {item.on_hand} on hand (reorder point {item.reorder_point}{low})"


async def stock_level(ask: Ask) -> ChatAnswer:
    """On hand of the products named, else a summary that asks for a product."""
    held = await facts.stock(ask.session, ask.company)
    if not held:
        return reply("stock-level", "No stock is recorded for your company.", {"products": []})
    chosen = [held[i] for i in match_products(ask.text, [(s.sku, s.name) for s in held])]
    if chosen:
        text = ". ".join(_stock_line(item) for item in chosen[:NAMED]) + "."
        return reply("stock-level", text, {"products": [_stock_json(s) for s in chosen]})
    low = [item.sku for item in held if item.low]
    text = (
        f"You hold {plural(len(held), 'product')}, {sum(s.on_hand for s in held)} units in all; "
        f"{len(low)} at or below their reorder point{': ' + listed(low) if low else ''}. "
        "Name a product or SKU for its level."
    )
    data = {"products": len(held), "units": sum(s.on_hand for s in held), "lowSkus": low}
    return reply("stock-level", text, data)


async def low_stock(ask: Ask) -> ChatAnswer:
    """Products at or below their reorder point, the emptiest first."""
    low = await facts.low_stock(ask.session, ask.company)
    data = {"products": [_stock_json(item) for item in low]}
    if not low:
        return reply("low-stock", "No product is at or below its reorder point.", data)
    lines = [f"{_product(s)} ({s.on_hand} on hand, reorder point {s.reorder_point})" for s in low]
    verb = "is" if len(low) == 1 else "are"
    text = f"{plural(len(low), 'product')} {verb} at or below the reorder point: {listed(lines)}."
    return reply("low-stock", text, data)


async def top_products(ask: Ask) -> ChatAnswer:
    """Units used of the products named, else the five most used, in the period."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    used = await facts.units_used(ask.session, ask.company, asked.period)
    held = await facts.stock(ask.session, ask.company)  # a product named may have no usage
    chosen = [held[i] for i in match_products(ask.text, [(s.sku, s.name) for s in held])]
    units = {item.sku: n for item, n in used}
    rows = [(s, units.get(s.sku, 0)) for s in chosen] if chosen else used[:5]
    data = {
        "period": period_json(asked),
        "products": [{"sku": s.sku, "unitsUsed": n} for s, n in rows],
    }
    if not rows:
        return reply("top-products", f"No product usage is recorded {asked.label}.", data)
    lines = "; ".join(f"{_product(s)}, {plural(n, 'unit')}" for s, n in rows)
    head = "Units used" if chosen else "Most used products"
    return reply("top-products", f"{head} {asked.label}: {lines}.", data)


# -- forecasts and anomalies ------------------------------------------------------------


def _forecast_line(item: stored.ProductForecast, level: float | None) -> str:
    text = f"{_product(item)}: about {item.mean:.0f} units"
    if item.lower is not None and item.upper is not None:
        interval = f"{level:.0%} interval" if level else "likely"
        text += f" ({interval} {item.lower:.0f} to {item.upper:.0f})"
    if item.on_hand is not None:
        text += f"; {item.on_hand} on hand"
    if item.stockout_in_days is not None:
        text += f", enough for about {item.stockout_in_days:.0f} days"
    if item.reorder_now:
        text += f"; reorder now ({item.reorder_quantity} units suggested)"
    return text


def _forecast_answer(
    intent: str, forecast: stored.ForecastFact, items: Sequence[stored.ProductForecast]
) -> ChatAnswer:
    start = f" from {short_date(forecast.start_day)}" if forecast.start_day else ""
    lines = ". ".join(_forecast_line(p, forecast.level) for p in items)
    text = f"Demand forecast for the {forecast.days} days{start}: {lines}."
    return reply(intent, text, {"days": forecast.days, "products": [asdict(p) for p in items]})


async def forecast(ask: Ask) -> ChatAnswer:
    """The newest stored demand forecast of the products named, else the five largest."""
    latest = await stored.latest_forecast(ask.session, ask.company)
    products = latest.products if latest else ()
    chosen = match_products(ask.text, [(p.sku, p.name) for p in products])
    if not chosen and metrics_named(ask.question) - {"inventory"}:
        text = "Only product demand is forecast; there is no forecast of revenue or orders."
        return reply("forecast", text, {}, answered=False)
    if latest is None:
        return reply("forecast", NO_FORECAST, {}, answered=False)
    top = sorted(latest.products, key=lambda p: -p.mean)[:5]
    items = [latest.products[i] for i in chosen] or top
    if not items:
        return reply("forecast", "The latest forecast covers no products.", {"products": []})
    return _forecast_answer("forecast", latest, items)


async def reorder(ask: Ask) -> ChatAnswer:
    """What the newest forecast says to reorder now; reorder points without one."""
    latest = await stored.latest_forecast(ask.session, ask.company)
    if latest is None:
        low = await low_stock(ask)
        return reply("reorder", f"{NO_FORECAST} By reorder points: {low.text}", low.facts)
    chosen = match_products(ask.text, [(p.sku, p.name) for p in latest.products])
    urgent = [p for p in latest.products if p.reorder_now]
    items = [latest.products[i] for i in chosen] or urgent
    if not items:
        return reply("reorder", "The latest forecast suggests no reorder now.", {"products": []})
    return _forecast_answer("reorder", latest, items)


async def anomalies(ask: Ask) -> ChatAnswer:
    """Anomalies the nightly scan stored for days of the period, with explanations."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    found = await stored.anomalies(ask.session, ask.company, asked.period)
    metrics = metrics_named(ask.question)
    found = [a for a in found if not metrics or a.metric in metrics]
    data = {
        "period": period_json(asked),
        "anomalies": [
            {"day": a.day.isoformat(), "metric": a.metric, "direction": a.direction}
            | {"score": round(a.score, 2), "value": a.value, "expected": a.expected}
            for a in found[:NAMED]
        ],
    }
    if not found:
        return reply("anomalies", f"No anomalies were found {asked.label}.", data)
    lines = [
        f"{short_date(a.day)}, {a.metric} {a.direction or 'anomaly'}"
        + (f": {a.explanation.rstrip('.')}" if a.explanation else "")
        for a in found
    ]
    text = f"{plural(len(found), 'anomaly', 'anomalies')} {asked.label}: " + "; ".join(
        lines[:NAMED]
    )
    return reply("anomalies", text + ".", {**data, "count": len(found)})


# -- patients ---------------------------------------------------------------------------


async def examinations(ask: Ask) -> ChatAnswer:
    """How many eye examinations a practice recorded (a count, never who)."""
    if ask.company.kind is not CompanyKind.PRACTICE:
        text = f"Examinations are recorded by practices; {ask.company.name} records none."
        return reply("examinations", text, {}, answered=False)
    asked = ask.period(this_month(ask.question.today))
    count = await facts.examinations(ask.session, ask.company, asked.period)
    text = f"{ask.company.name} recorded {plural(count, 'eye examination')} {asked.label}."
    return reply("examinations", text, {"period": period_json(asked), "examinations": count})
