"""Chat answers about trade with other companies: overdue invoices, customers, the
orders of one named customer or lab, and the mix of lens types and coatings.

Scoping is the point of this module. A lab's customers are the practices that place
orders *with it*: their names, orders and invoices *with this lab* are the lab's own
data, so "who is our best customer" and "orders from Brightside Opticians" are
answered, counting only what passed between the two. A practice sees its own orders
and bills, by lab. Every query filters on the asking company (``orders_side``,
``Invoice.company_id`` / ``Invoice.customer_id``); a company that never traded with
the asker is not a partner, and naming it is declined by the caller like any other
company's name (see :func:`ils.workers.ai.chat.compose_answer`).

A practice's own customers are patients: rankings of them are never offered.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ils.domain.billing import Invoice, InvoiceLine, InvoiceStatus
from ils.domain.companies import Company, CompanyKind
from ils.domain.lens_options import label
from ils.domain.orders import Order, OrderStatus
from ils.workers.ai import facts
from ils.workers.ai.chat_answers import (
    NAMED,
    RECENT_DAYS,
    Ask,
    ChatAnswer,
    listed,
    period_json,
    received_verb,
    reply,
)
from ils.workers.ai.chat_periods import last_days
from ils.workers.ai.chat_questions import OPEN, asks_what_is_owed
from ils.workers.ai.facts import LINE_NET, UNPAID_STATUSES, money, short_date
from ils.workers.ai.results import plural

#: Words too common in company names to identify one alone ("Clear View Lens Lab" is
#: not meant by "is the picture clear?"); a name is then matched in full.
_COMMON_WORDS: Final = frozenset(
    {"clear", "optical", "opticians", "optics", "vision", "eyecare", "lenses", "practice"}
)
#: Shortest first word of a name that identifies a company on its own ("Harbour").
_MIN_NAME_WORD: Final = 5
#: How many partners a ranking names.
TOP_PARTNERS: Final = 5


@dataclass(frozen=True, slots=True)
class Partner:
    """A company the asker trades with: a practice ordering from a lab, or a practice's lab."""

    id: str
    name: str


def _other_side(company: Company) -> InstrumentedAttribute[str]:
    """The column holding the partner of an order: the practice for a lab, else the lab."""
    return Order.company_id if company.kind is CompanyKind.LAB else Order.lab_id


async def partners(session: AsyncSession, company: Company) -> list[Partner]:
    """Companies with at least one order between them and ``company``, by name."""
    other = _other_side(company)
    query = (
        select(Company.id, Company.name)
        .where(Company.id.in_(select(other).where(facts.orders_side(company))))
        .order_by(Company.name)
    )
    return [Partner(pid, name) for pid, name in (await session.execute(query)).all()]


def named_partners(text: str, known: Sequence[Partner]) -> list[Partner]:
    """The partners ``text`` (lower-cased) names: in full, or by a distinctive first word
    ("Harbour's orders")."""
    found = []
    for partner in known:
        name = partner.name.lower()
        first = name.split()[0] if name.split() else ""
        distinctive = len(first) >= _MIN_NAME_WORD and first not in _COMMON_WORDS
        if name in text or (distinctive and re.search(rf"\b{re.escape(first)}\b", text)):
            found.append(partner)
    return found


# -- overdue invoices -------------------------------------------------------------------


async def overdue_invoices(ask: Ask) -> ChatAnswer:
    """Invoices past their due date with money still owed, the longest overdue first:
    those the company issued, or (a practice, or "our bills") those it must pay."""
    today = ask.question.today
    payable = asks_what_is_owed(ask.question, ask.company.kind)
    whose = Invoice.customer_id if payable else Invoice.company_id
    other = Invoice.company_id if payable else Invoice.customer_id
    rows = (
        await ask.session.execute(
            select(Invoice, Company.name)
            .join(Company, Company.id == other)
            .where(
                whose == ask.company.id,
                Invoice.status.in_(UNPAID_STATUSES),
                Invoice.due_on < today,
            )
            .order_by(Invoice.due_on, Invoice.number)
        )
    ).all()
    late = [(inv, name, inv.balance_cents()) for inv, name in rows if inv.balance_cents() > 0]
    total = sum(cents for _, _, cents in late)
    data: dict[str, Any] = {
        "today": today.isoformat(),
        "direction": "payable" if payable else "receivable",
        "count": len(late),
        "overdueCents": total,
        "invoices": [
            {"number": inv.number, "dueOn": inv.due_on.isoformat(), "balanceCents": cents}
            | {"company": name, "daysLate": (today - inv.due_on).days}
            for inv, name, cents in late[:NAMED]
        ],
    }
    if not late:
        return reply("overdue-invoices", "No invoices are overdue.", data)
    described = [
        f"{inv.number} ({name}, {money(cents, inv.currency)}, due {short_date(inv.due_on)}, "
        f"{plural((today - inv.due_on).days, 'day')} late)"
        for inv, name, cents in late
    ]
    verb = "is" if len(late) == 1 else "are"
    owed = "you owe" if payable else "owed to you"
    text = (
        f"{plural(len(late), 'invoice')} {verb} overdue, {money(total)} {owed} in all: "
        f"{listed(described)}."
    )
    return reply("overdue-invoices", text, data)


# -- customers and labs -----------------------------------------------------------------


async def _orders_by_partner(ask: Ask, first: datetime, after: datetime) -> Counter[str]:
    other = _other_side(ask.company)
    rows = await ask.session.execute(
        select(other, func.count(Order.id))
        .where(facts.orders_side(ask.company), Order.created_at >= first, Order.created_at < after)
        .group_by(other)
    )
    return Counter({pid: int(n) for pid, n in rows.all()})


async def _invoiced_by_partner(ask: Ask, start: date, end: date) -> Counter[str]:
    """Net invoiced in the period: by the lab to each practice, or to the practice by
    each lab (void invoices excepted)."""
    lab = ask.company.kind is CompanyKind.LAB
    mine: ColumnElement[bool] = (
        Invoice.company_id == ask.company.id if lab else Invoice.customer_id == ask.company.id
    )
    other = Invoice.customer_id if lab else Invoice.company_id
    rows = await ask.session.execute(
        select(other, func.coalesce(func.sum(LINE_NET), 0))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(mine, Invoice.status != InvoiceStatus.VOID, Invoice.issued_on.between(start, end))
        .group_by(other)
    )
    return Counter({pid: int(cents) for pid, cents in rows.all()})


async def customers(ask: Ask) -> ChatAnswer:
    """A lab's customers ranked by net invoiced then orders in the period; a practice's
    labs the same way. Never patients, never companies the asker does not trade with."""
    if ask.company.kind is CompanyKind.PRACTICE and re.search(r"\b(?:customer|client)", ask.text):
        text = "A practice's customers are its patients, and I don't rank or name patients."
        return reply("customers", text, {"reason": "personal"}, answered=False)
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    first, after = asked.period.utc_bounds(ask.company)
    orders = await _orders_by_partner(ask, first, after)
    invoiced = await _invoiced_by_partner(ask, asked.period.start, asked.period.end)
    names = {p.id: p.name for p in await partners(ask.session, ask.company)}
    ids = [pid for pid in names if orders[pid] or invoiced[pid]]
    ids.sort(key=lambda pid: (-invoiced[pid], -orders[pid], names[pid]))
    lab = ask.company.kind is CompanyKind.LAB
    top = [(names[pid], orders[pid], invoiced[pid]) for pid in ids[:TOP_PARTNERS]]
    data = {
        "period": period_json(asked),
        "ranking": [{"company": n, "orders": o, "invoicedCents": c} for n, o, c in top],
    }
    who = "customers" if lab else "labs"
    if not ids:
        return reply("customers", f"No orders or invoices with {who} {asked.label}.", data)
    lines = [f"{n}, {money(c)} invoiced and {plural(o, 'order')}" for n, o, c in top]
    head = "Your customers" if lab else "Your labs"
    text = f"{head} {asked.label}, by net invoiced: " + "; ".join(lines) + "."
    return reply("customers", text, data)


async def partner_orders(ask: Ask, named: Sequence[Partner]) -> ChatAnswer:
    """Orders between the asker and each partner named: placed in the period, open now
    (the first of them listed), and what is owed between them."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    first, after = asked.period.utc_bounds(ask.company)
    other = _other_side(ask.company)
    lab = ask.company.kind is CompanyKind.LAB
    sentences, found = [], []
    for partner in named[:3]:
        mine = (facts.orders_side(ask.company), other == partner.id)
        placed = await ask.session.scalar(
            select(func.count(Order.id)).where(
                *mine, Order.created_at >= first, Order.created_at < after
            )
        )
        open_numbers = list(
            await ask.session.scalars(
                select(Order.number)
                .where(*mine, Order.status.in_(OPEN))
                .order_by(Order.due_date, Order.number)
            )
        )
        owed = await _owed_between(ask, partner, lab)
        verb = "placed with you" if lab else f"{received_verb(ask.company)} with them"
        text = (
            f"{partner.name}: {plural(int(placed or 0), 'order')} {verb} {asked.label}; "
            f"{len(open_numbers)} open now"
        )
        if open_numbers:
            text += f" ({listed(open_numbers)})"
        text += f"; {money(owed)} unpaid {'by them' if lab else 'by you'}."
        sentences.append(text)
        found.append(
            {"company": partner.name, "orders": int(placed or 0), "openOrders": len(open_numbers)}
            | {"openNumbers": open_numbers[:NAMED], "unpaidCents": owed}
        )
    return reply(
        "partner-orders", " ".join(sentences), {"period": period_json(asked), "companies": found}
    )


async def _owed_between(ask: Ask, partner: Partner, lab: bool) -> int:
    """Unpaid balance of the invoices between the asker and ``partner``."""
    issuer, customer = (ask.company.id, partner.id) if lab else (partner.id, ask.company.id)
    invoices = await ask.session.scalars(
        select(Invoice).where(
            Invoice.company_id == issuer,
            Invoice.customer_id == customer,
            Invoice.status.in_(UNPAID_STATUSES),
        )
    )
    return sum(max(invoice.balance_cents(), 0) for invoice in invoices)


# -- lens types and coatings ------------------------------------------------------------


def _words(code: str) -> str:
    """A lens design code in words: ``single_vision`` is ``single vision``."""
    return code.replace("_", " ")


async def lens_mix(ask: Ask) -> ChatAnswer:
    """Orders of the period (cancelled ones excepted) by lens type and by coating, most
    first; a coating counts once per order that has it."""
    asked = ask.period(last_days(ask.question.today, RECENT_DAYS))
    first, after = asked.period.utc_bounds(ask.company)
    rows = (
        await ask.session.execute(
            select(Order.lens_material, Order.lens_design, Order.coatings).where(
                facts.orders_side(ask.company),
                Order.created_at >= first,
                Order.created_at < after,
                Order.status != OrderStatus.CANCELLED,
            )
        )
    ).all()
    types = Counter(label(m) for m, _, _ in rows if m)
    designs = Counter(_words(d) for _, d, _ in rows)
    coatings = Counter(label(c) for _, _, codes in rows for c in set(codes or ()) if c)
    data = {
        "period": period_json(asked),
        "orders": len(rows),
        "lensTypes": dict(types.most_common()),
        "designs": dict(designs.most_common()),
        "coatings": dict(coatings.most_common()),
    }
    if not rows:
        text = f"No orders were {received_verb(ask.company)} {asked.label}."
        return reply("lens-mix", text, data)
    total = len(rows)

    def ranked(counts: Counter[str]) -> str:
        shown = ", ".join(f"{name} {n} ({n / total:.0%})" for name, n in counts.most_common())
        return shown or "none recorded"

    parts = {
        "Lens types": ranked(types),
        "Designs": ranked(designs),
        "Coatings": ranked(coatings),
    }
    first_part = "Lens types"
    if "coat" in ask.text:
        first_part = "Coatings"
    elif re.search(r"\bdesigns?\b|\bprogressive|\bbifocal|\bsingle[- ]vision", ask.text):
        first_part = "Designs"
    order = [first_part] + [name for name in parts if name != first_part]
    head = f"{first_part} {asked.label}, over {plural(total, 'order')}: {parts[first_part]}."
    rest = " ".join(f"{name}: {parts[name]}." for name in order[1:])
    return reply("lens-mix", f"{head} {rest}", data)
