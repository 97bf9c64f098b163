"""Chat questions about overdue invoices, weeks and months, customers and lens mix.

Twenty questions phrased as people ask them, each answer checked against SQL written
here over the tables (not through ``facts`` or ``chat_trade``); then the scoping: a
lab sees the orders placed with it, a practice its own, nobody another company's.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import Invoice, InvoiceLine, InvoiceStatus
from ils.domain.companies import Company, CompanyKind
from ils.domain.lens_options import label
from ils.domain.orders import Order, OrderStatus
from tests.workers.ai.conftest import TODAY, ask, bounds, company_named, pounds, short

OPEN = (
    OrderStatus.SUBMITTED,
    OrderStatus.ACCEPTED,
    OrderStatus.IN_PRODUCTION,
    OrderStatus.QUALITY_CHECK,
    OrderStatus.ON_HOLD,
)
LAST_30 = (TODAY - timedelta(days=29), TODAY)


async def overdue_numbers(session: AsyncSession, column: object, company: Company) -> list[str]:
    """Unpaid invoices of ``company`` (as issuer or customer) due before today, with a
    positive balance: gross from the lines' VAT rates minus payments."""
    rows = await session.scalars(
        select(Invoice)
        .where(
            column == company.id,  # type: ignore[operator]
            Invoice.status.in_((InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)),
            Invoice.due_on < TODAY,
        )
        .order_by(Invoice.due_on, Invoice.number)
    )
    numbers = []
    for invoice in rows:
        gross = sum(
            line.quantity * line.unit_price_cents * (10_000 + line.vat_rate_bp) / 10_000
            for line in invoice.lines
        )
        if gross - sum(p.amount_cents for p in invoice.payments) > 0.5:
            numbers.append(invoice.number)
    return numbers


async def orders_between(
    session: AsyncSession, company: Company, first: date, last: date, **where: str
) -> int:
    start, after = bounds(company, first, last)
    query = select(func.count(Order.id)).where(Order.created_at >= start, Order.created_at < after)
    for column, value in where.items():
        query = query.where(getattr(Order, column) == value)
    return int(await session.scalar(query) or 0)


async def net_invoiced(session: AsyncSession, lab: Company, first: date, last: date) -> int:
    return int(
        await session.scalar(
            select(func.coalesce(func.sum(InvoiceLine.quantity * InvoiceLine.unit_price_cents), 0))
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.company_id == lab.id,
                Invoice.status != InvoiceStatus.VOID,
                Invoice.issued_on.between(first, last),
            )
        )
        or 0
    )


# -- overdue invoices (4 questions) --------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["Which invoices are overdue?", "Any overdue invoices?", "Which customers are paying late?"],
)
async def test_overdue_invoices_are_invoices_not_orders(
    session: AsyncSession, lab: Company, question: str
) -> None:
    expected = await overdue_numbers(session, Invoice.company_id, lab)
    assert expected, "the demo network has overdue invoices"
    answer = await ask(session, lab, question)
    assert (answer.intent, answer.answered) == ("overdue-invoices", True)
    assert answer.facts["count"] == len(expected)
    assert answer.text.startswith(f"{len(expected)} invoices are overdue")
    assert [i["number"] for i in answer.facts["invoices"]] == expected[:10]
    first = await session.scalar(select(Invoice).where(Invoice.number == expected[0]))
    assert first is not None
    assert f"due {short(first.due_on)}, {(TODAY - first.due_on).days} days late" in answer.text
    assert "ORD-" not in answer.text


async def test_a_practice_sees_its_own_overdue_bills(
    session: AsyncSession, practice: Company
) -> None:
    expected = await overdue_numbers(session, Invoice.customer_id, practice)
    answer = await ask(session, practice, "Are any of our bills overdue?")
    assert answer.intent == "overdue-invoices" and answer.facts["direction"] == "payable"
    assert answer.facts["count"] == len(expected)
    assert [i["number"] for i in answer.facts["invoices"]] == expected[:10]


# -- weeks and months (6 questions) --------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "first", "last"),
    [
        ("How many orders did we receive the week of 23 November?", date(2026, 11, 23), TODAY),
        ("Orders in the week beginning 9th November?", date(2026, 11, 9), date(2026, 11, 15)),
        ("how many orders did we get last month", date(2026, 10, 1), date(2026, 10, 31)),
    ],
)
async def test_orders_in_a_week_or_month(
    session: AsyncSession, lab: Company, question: str, first: date, last: date
) -> None:
    expected = await orders_between(session, lab, first, last, lab_id=lab.id)
    answer = await ask(session, lab, question)
    assert answer.intent == "orders-count"
    assert answer.facts["period"] == {"start": first.isoformat(), "end": last.isoformat()}
    assert answer.text.startswith(f"{expected} orders received"), answer.text


@pytest.mark.parametrize(
    ("question", "first", "last"),
    [
        ("What did we invoice in the week of 16 November?", date(2026, 11, 16), date(2026, 11, 22)),
        ("Revenue for the week ending 20 Nov", date(2026, 11, 14), date(2026, 11, 20)),
        ("How much revenue this week?", date(2026, 11, 23), TODAY),
    ],
)
async def test_revenue_of_a_week(
    session: AsyncSession, lab: Company, question: str, first: date, last: date
) -> None:
    expected = await net_invoiced(session, lab, first, last)
    answer = await ask(session, lab, question)
    assert answer.intent == "revenue"
    assert answer.facts["revenueCents"] == expected
    assert pounds(expected) in answer.text and short(first) in answer.text


async def test_a_practice_counts_its_orders_of_a_week(
    session: AsyncSession, practice: Company
) -> None:
    first = date(2026, 11, 16)
    expected = await orders_between(
        session, practice, first, first + timedelta(days=6), company_id=practice.id
    )
    answer = await ask(session, practice, "How many orders did we place in the week of 16 Nov?")
    assert answer.text.startswith(f"{expected} orders placed in the week of 16 Nov 2026")


# -- customers and their orders (6 questions) ----------------------------------------------


async def customer_ranking(
    session: AsyncSession, lab: Company, first: date, last: date
) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(Company.name, func.sum(InvoiceLine.quantity * InvoiceLine.unit_price_cents))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .join(Company, Company.id == Invoice.customer_id)
        .where(
            Invoice.company_id == lab.id,
            Invoice.status != InvoiceStatus.VOID,
            Invoice.issued_on.between(first, last),
        )
        .group_by(Company.name)
    )
    return sorted(((n, int(c)) for n, c in rows.all()), key=lambda r: (-r[1], r[0]))


async def test_the_labs_best_customer(session: AsyncSession, lab: Company) -> None:
    ranking = await customer_ranking(session, lab, *LAST_30)
    answer = await ask(session, lab, "Who is our best customer?")
    assert (answer.intent, answer.answered) == ("customers", True)
    best, cents = ranking[0]
    assert answer.text.index(best) < min(answer.text.index(n) for n, _ in ranking[1:])
    assert f"{best}, {pounds(cents)} invoiced" in answer.text


async def test_practices_ordering_most_last_month(session: AsyncSession, lab: Company) -> None:
    first, last = date(2026, 10, 1), date(2026, 10, 31)
    answer = await ask(session, lab, "Which practices ordered the most last month?")
    assert answer.intent == "customers"
    for row in answer.facts["ranking"]:
        practice = await company_named(session, row["company"])
        placed = await orders_between(session, lab, first, last, company_id=practice.id)
        assert row["orders"] == placed
    assert [(r["company"], r["invoicedCents"]) for r in answer.facts["ranking"]] == (
        await customer_ranking(session, lab, first, last)
    )


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("Show me Brightside Opticians' orders this month", date(2026, 11, 1)),
        ("How many orders has Brightside placed this week?", date(2026, 11, 23)),
    ],
)
async def test_a_named_customers_orders(
    session: AsyncSession, lab: Company, practice: Company, question: str, first: date
) -> None:
    placed = await orders_between(session, lab, first, TODAY, company_id=practice.id)
    open_now = await session.scalar(
        select(func.count(Order.id)).where(
            Order.lab_id == lab.id, Order.company_id == practice.id, Order.status.in_(OPEN)
        )
    )
    answer = await ask(session, lab, question)
    assert (answer.intent, answer.answered) == ("partner-orders", True)
    assert answer.text.startswith(f"Brightside Opticians: {placed} orders placed with you")
    assert f"; {open_now} open now" in answer.text
    assert answer.facts["companies"][0]["orders"] == placed


async def test_top_customers_this_month(session: AsyncSession, lab: Company) -> None:
    answer = await ask(session, lab, "Top customers this month")
    ranking = await customer_ranking(session, lab, date(2026, 11, 1), TODAY)
    assert [(r["company"], r["invoicedCents"]) for r in answer.facts["ranking"]] == ranking
    assert "this month (1 Nov 2026 to 28 Nov 2026)" in answer.text


async def test_what_a_named_practice_ordered_last_month(
    session: AsyncSession, lab: Company
) -> None:
    northgate = await company_named(session, "Northgate Vision")
    placed = await orders_between(
        session, lab, date(2026, 10, 1), date(2026, 10, 31), company_id=northgate.id
    )
    answer = await ask(session, lab, "What did Northgate Vision order last month?")
    assert answer.intent == "partner-orders"
    assert answer.text.startswith(f"Northgate Vision: {placed} orders placed with you in October")


# -- lens types and coatings (3 questions) -------------------------------------------------


async def lens_rows(
    session: AsyncSession, company: Company, first: date, last: date, side: str
) -> list[tuple[str | None, str, list[str]]]:
    start, after = bounds(company, first, last)
    rows = await session.execute(
        select(Order.lens_material, Order.lens_design, Order.coatings).where(
            getattr(Order, side) == company.id,
            Order.created_at >= start,
            Order.created_at < after,
            Order.status != OrderStatus.CANCELLED,
        )
    )
    return [(m, d, c) for m, d, c in rows.all()]


async def test_which_lens_types_sell_most(session: AsyncSession, lab: Company) -> None:
    rows = await lens_rows(session, lab, *LAST_30, "lab_id")
    types = Counter(label(m) for m, _, _ in rows if m)
    answer = await ask(session, lab, "Which lens types sell most?")
    assert (answer.intent, answer.answered) == ("lens-mix", True)
    assert answer.facts["orders"] == len(rows)
    assert answer.facts["lensTypes"] == dict(types)
    top, count = types.most_common(1)[0]
    assert answer.text.startswith("Lens types in the last 30 days")
    assert f"{top} {count} ({count / len(rows):.0%})" in answer.text


async def test_most_popular_coatings_last_month(session: AsyncSession, lab: Company) -> None:
    rows = await lens_rows(session, lab, date(2026, 10, 1), date(2026, 10, 31), "lab_id")
    coatings = Counter(label(c) for _, _, codes in rows for c in set(codes))
    answer = await ask(session, lab, "What are our most popular coatings last month?")
    assert answer.facts["coatings"] == dict(coatings)
    assert answer.text.startswith(f"Coatings in October 2026, over {len(rows)} orders")


async def test_a_practice_sees_the_lens_designs_of_its_own_orders(
    session: AsyncSession, practice: Company
) -> None:
    rows = await lens_rows(session, practice, date(2026, 1, 1), TODAY, "company_id")
    designs = Counter(str(d).replace("_", " ") for _, d, _ in rows)
    answer = await ask(session, practice, "What kind of lens designs did we order most this year?")
    assert answer.intent == "lens-mix"
    assert answer.facts["orders"] == len(rows) and answer.facts["designs"] == dict(designs)
    assert answer.text.startswith("Designs this year")


# -- scoping --------------------------------------------------------------------------------


async def test_a_practice_gets_no_other_practices_data(
    session: AsyncSession, practice: Company
) -> None:
    other = await company_named(session, "Harbour Eyecare")
    for question in (
        "How many orders has Harbour Eyecare placed?",
        "Which lens types does Harbour Eyecare order most?",
        "Which invoices of Harbour Eyecare are overdue?",
        "Show me Harbour Eyecare's orders last month",
    ):
        answer = await ask(session, practice, question)
        assert not answer.answered, question
        # Declined before any figure is read ("Harbour Eyecare's" may read as a person).
        assert answer.facts["reason"] in ("other-company", "personal"), question
    declined = await ask(session, practice, "Who is our best customer?")
    assert not declined.answered and "Harbour" not in declined.text
    labs = await ask(session, practice, "Which lab do we use most?")
    assert [r["company"] for r in labs.facts["ranking"]] == ["Clear View Lens Lab"]
    for question in ("Which invoices are overdue?", "Which lens types sell most?"):
        answer = await ask(session, practice, question)
        assert other.name not in answer.text, question
    overdue = await ask(session, practice, "Which invoices are overdue?")
    theirs = await overdue_numbers(session, Invoice.customer_id, other)
    assert not set(theirs) & {i["number"] for i in overdue.facts["invoices"]}


async def test_a_lab_gets_only_the_orders_placed_with_it(
    session: AsyncSession, lab: Company, practice: Company
) -> None:
    rival = Company(kind=CompanyKind.LAB, name="Rival Optical Works")
    session.add(rival)
    await session.flush()
    moved = await session.scalar(
        select(Order.id)
        .where(Order.company_id == practice.id, Order.lab_id == lab.id)
        .order_by(Order.created_at.desc())
        .limit(1)
    )
    await session.execute(update(Order).where(Order.id == moved).values(lab_id=rival.id))
    await session.flush()
    first = TODAY - timedelta(days=29)
    with_lab = await orders_between(
        session, lab, first, TODAY, company_id=practice.id, lab_id=lab.id
    )
    ours = await ask(session, lab, "How many orders has Brightside Opticians placed?")
    assert ours.facts["companies"][0]["orders"] == with_lab
    theirs = await ask(session, rival, "How many orders has Brightside Opticians placed?")
    assert theirs.facts["companies"][0]["orders"] == 1
    ranking = await ask(session, rival, "Who is our best customer?")
    assert [(r["company"], r["orders"]) for r in ranking.facts["ranking"]] == [
        ("Brightside Opticians", 1)
    ]
    never = await ask(session, rival, "How many orders has Harbour Eyecare placed?")
    assert never.facts == {"reason": "other-company"}
    mix = await ask(session, rival, "Which lens types sell most?")
    assert mix.facts["orders"] == 1


async def test_a_supplier_gets_no_customer_ranking(session: AsyncSession) -> None:
    supplier = await session.scalar(select(Company).where(Company.kind == CompanyKind.SUPPLIER))
    assert supplier is not None
    answer = await ask(session, supplier, "Who is our best customer?")
    assert answer.facts == {"reason": "other-company"}
    named = await ask(session, supplier, "How many orders has Brightside Opticians placed?")
    assert named.facts == {"reason": "other-company"}
