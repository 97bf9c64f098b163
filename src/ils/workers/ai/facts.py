"""The company's figures the AI worker reasons from: one query per fact, company-scoped.

Briefings, insights, anomaly runs and chat answers all read the same facts from
here, so a figure in a chat answer is the figure in the morning briefing. Every
function takes the company and filters on it: a lab sees the orders made for it, a
practice the orders it placed, nobody another company's data. None of them returns
patient data: orders are named by number, stock by SKU and product name.

Dates are the company's local calendar dates; instants are compared against the
UTC bounds of local days (:meth:`Period.utc_bounds`), so "yesterday" means the
company's yesterday whatever zone the server runs in.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ils.domain.billing import Invoice, InvoiceLine, InvoiceStatus, Payment
from ils.domain.clinical import Examination, Patient
from ils.domain.companies import Company, CompanyKind
from ils.domain.money import format_money
from ils.domain.orders import Order, OrderStatus, OrderStatusChange
from ils.domain.supply import DailySale, Product, StockLevel

#: Orders that are finished from the lab's point of view: nothing is due any more.
CLOSED_STATUSES: Final = frozenset(
    {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED}
)
#: Invoices that still expect money.
UNPAID_STATUSES: Final = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
#: Longest list a fact returns (a briefing names at most this many orders).
LIST_LIMIT: Final = 50


@dataclass(frozen=True, slots=True)
class Period:
    """Local calendar dates ``start``..``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    @classmethod
    def day(cls, day: date) -> Period:
        """The single day ``day``."""
        return cls(day, day)

    @property
    def days(self) -> int:
        """How many days the period covers."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one (for comparisons)."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def utc_bounds(self, company: Company) -> tuple[datetime, datetime]:
        """UTC instants of the company's local midnight starting ``start`` and the one
        ending ``end`` (half-open), so each day keeps its real length across DST."""
        zone = company.zone
        first = datetime.combine(self.start, time(), zone).astimezone(UTC)
        after = datetime.combine(self.end + timedelta(days=1), time(), zone).astimezone(UTC)
        return first, after

    def label(self) -> str:
        """``3 Nov 2026`` or ``1 Nov 2026 to 30 Nov 2026``."""
        if self.start == self.end:
            return short_date(self.start)
        return f"{short_date(self.start)} to {short_date(self.end)}"


def short_date(day: date) -> str:
    """``3 Nov 2026``: unambiguous in every locale the platform serves."""
    return f"{day.day} {day:%b %Y}"


def money(cents: int | float, currency: str = "GBP") -> str:
    """``£1,234.50``; other currencies get their code (``EUR 1,234.50``)."""
    return format_money(cents, currency)


# -- orders ---------------------------------------------------------------------------


def orders_side(company: Company) -> ColumnElement[bool]:
    """The orders a company deals with: made for a lab, placed by a practice."""
    if company.kind is CompanyKind.LAB:
        return Order.lab_id == company.id
    return Order.company_id == company.id


@dataclass(frozen=True, slots=True)
class OrderFact:
    """An order as facts name it: number, status, due date, the other company."""

    id: str
    number: str
    status: OrderStatus
    due_date: date | None
    counterparty: str
    created_at: datetime


def _order_facts(company: Company) -> Select[tuple[Order, str]]:
    other = aliased(Company)
    other_id = Order.company_id if company.kind is CompanyKind.LAB else Order.lab_id
    return select(Order, other.name).join(other, other.id == other_id).where(orders_side(company))


async def _orders(session: AsyncSession, query: Select[tuple[Order, str]]) -> list[OrderFact]:
    rows = await session.execute(query.limit(LIST_LIMIT))
    return [OrderFact(o.id, o.number, o.status, o.due_date, name, o.created_at) for o, name in rows]


async def overdue_orders(session: AsyncSession, company: Company, today: date) -> list[OrderFact]:
    """Open orders whose due date has passed, the longest overdue first."""
    query = _order_facts(company).where(
        Order.due_date < today, Order.status.not_in(CLOSED_STATUSES)
    )
    return await _orders(session, query.order_by(Order.due_date, Order.number))


async def orders_due_on(session: AsyncSession, company: Company, day: date) -> list[OrderFact]:
    """Open orders due on ``day``."""
    query = _order_facts(company).where(Order.due_date == day, Order.status.not_in(CLOSED_STATUSES))
    return await _orders(session, query.order_by(Order.number))


async def orders_on_hold(session: AsyncSession, company: Company) -> list[OrderFact]:
    """Orders on hold, oldest first."""
    query = _order_facts(company).where(Order.status == OrderStatus.ON_HOLD)
    return await _orders(session, query.order_by(Order.created_at))


async def order_by_number(session: AsyncSession, company: Company, number: str) -> OrderFact | None:
    """One order of the company by its number (``None`` for another company's)."""
    found = await _orders(session, _order_facts(company).where(Order.number == number.upper()))
    return found[0] if found else None


async def orders_created(
    session: AsyncSession,
    company: Company,
    period: Period,
    statuses: Sequence[OrderStatus] | None = None,
) -> int:
    """Orders placed (practice) or received (lab) in the period, optionally only
    those now in ``statuses``."""
    first, after = period.utc_bounds(company)
    query = select(func.count(Order.id)).where(
        orders_side(company), Order.created_at >= first, Order.created_at < after
    )
    if statuses:
        query = query.where(Order.status.in_(statuses))
    return int(await session.scalar(query) or 0)


async def orders_by_status(session: AsyncSession, company: Company) -> dict[OrderStatus, int]:
    """How many of the company's orders are in each status now."""
    rows = await session.execute(
        select(Order.status, func.count(Order.id))
        .where(orders_side(company))
        .group_by(Order.status)
    )
    return {OrderStatus(status): int(n) for status, n in rows}


async def orders_shipped(session: AsyncSession, company: Company, period: Period) -> int:
    """Orders that moved to ``shipped`` in the period."""
    return await orders_moved_to(session, company, period, OrderStatus.SHIPPED)


async def turnaround_days(session: AsyncSession, company: Company, period: Period) -> list[float]:
    """Days from order to shipping, for each order shipped in the period."""
    first, after = period.utc_bounds(company)
    shipped = (
        select(OrderStatusChange.order_id, func.min(OrderStatusChange.changed_at).label("at"))
        .where(OrderStatusChange.to_status == OrderStatus.SHIPPED)
        .group_by(OrderStatusChange.order_id)
        .subquery()
    )
    rows = await session.execute(
        select(Order.created_at, shipped.c.at)
        .join(shipped, shipped.c.order_id == Order.id)
        .where(orders_side(company), shipped.c.at >= first, shipped.c.at < after)
    )
    return [_as_utc(at) - _as_utc(created) for created, at in rows if at is not None]


def _as_utc(moment: datetime) -> float:
    """Seconds since the epoch / 86400: days, whether the driver returned a naive UTC
    datetime (SQLite aggregates) or an aware one."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp() / 86_400


def median(values: Sequence[float]) -> float | None:
    """The median, ``None`` for no values."""
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class Remakes:
    """Remakes among the orders created in a period."""

    remakes: int
    orders: int

    @property
    def rate(self) -> float | None:
        """Share of orders that were remakes (``None`` without orders)."""
        return self.remakes / self.orders if self.orders else None


async def remakes(session: AsyncSession, company: Company, period: Period) -> Remakes:
    """How many orders created in the period remake an earlier one."""
    first, after = period.utc_bounds(company)
    row = (
        await session.execute(
            select(func.count(Order.id), func.count(Order.remake_of_id)).where(
                orders_side(company), Order.created_at >= first, Order.created_at < after
            )
        )
    ).one()
    return Remakes(remakes=int(row[1] or 0), orders=int(row[0] or 0))


# -- money ----------------------------------------------------------------------------


#: Net amount of an invoice line (revenue is counted before VAT).
LINE_NET: Final = InvoiceLine.quantity * InvoiceLine.unit_price_cents


def invoiced_in(company: Company, period: Period) -> tuple[ColumnElement[bool], ...]:
    """The invoices that count as the company's revenue in the period: issued by it,
    dated in the period, not void. Every revenue figure (totals, daily series, per
    customer) filters with this, so they agree."""
    return (
        Invoice.company_id == company.id,
        Invoice.status != InvoiceStatus.VOID,
        Invoice.issued_on >= period.start,
        Invoice.issued_on <= period.end,
    )


async def revenue_cents(session: AsyncSession, company: Company, period: Period) -> int:
    """Net revenue (before VAT) invoiced by the company in the period."""
    query = (
        select(func.coalesce(func.sum(LINE_NET), 0))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*invoiced_in(company, period))
    )
    return int(await session.scalar(query) or 0)


async def payments_cents(session: AsyncSession, company: Company, period: Period) -> int:
    """Payments received by the company in the period."""
    first, after = period.utc_bounds(company)
    query = select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.company_id == company.id, Payment.received_at >= first, Payment.received_at < after
    )
    return int(await session.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class Receivables:
    """What customers owe the company."""

    unpaid: int
    outstanding_cents: int
    overdue: int
    overdue_cents: int
    overdue_numbers: tuple[str, ...]


async def receivables(session: AsyncSession, company: Company, today: date) -> Receivables:
    """Unpaid invoices the company issued, and the part of them past their due date."""
    return await _unpaid(session, Invoice.company_id == company.id, today)


async def _unpaid(session: AsyncSession, whose: ColumnElement[bool], today: date) -> Receivables:
    invoices = (
        await session.scalars(
            select(Invoice)
            .where(whose, Invoice.status.in_(UNPAID_STATUSES))
            .order_by(Invoice.due_on, Invoice.number)
        )
    ).all()
    owed = [(invoice, invoice.balance_cents()) for invoice in invoices]
    owed = [(invoice, cents) for invoice, cents in owed if cents > 0]
    late = [(invoice, cents) for invoice, cents in owed if invoice.due_on < today]
    return Receivables(
        unpaid=len(owed),
        outstanding_cents=sum(cents for _, cents in owed),
        overdue=len(late),
        overdue_cents=sum(cents for _, cents in late),
        overdue_numbers=tuple(invoice.number for invoice, _ in late[:LIST_LIMIT]),
    )


# -- stock ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockFact:
    """A product a lab holds: how many, and below what it should reorder."""

    product_id: str
    sku: str
    name: str
    on_hand: int
    reorder_point: int
    lead_time_days: int

    @property
    def low(self) -> bool:
        """At or below the reorder point."""
        return self.on_hand <= self.reorder_point


def _stock() -> Select[tuple[StockLevel, Product]]:
    return select(StockLevel, Product).join(Product, Product.id == StockLevel.product_id)


def _stock_fact(level: StockLevel, product: Product) -> StockFact:
    return StockFact(
        product.id,
        product.sku,
        product.name,
        level.on_hand,
        level.reorder_point,
        product.lead_time_days,
    )


async def stock(session: AsyncSession, company: Company) -> list[StockFact]:
    """Every product the company holds stock of, by SKU."""
    rows = await session.execute(
        _stock().where(StockLevel.company_id == company.id).order_by(Product.sku)
    )
    return [_stock_fact(level, product) for level, product in rows]


async def low_stock(session: AsyncSession, company: Company) -> list[StockFact]:
    """Products at or below their reorder point, the emptiest (relative) first."""
    rows = await session.execute(
        _stock()
        .where(
            StockLevel.company_id == company.id,
            StockLevel.on_hand <= StockLevel.reorder_point,
        )
        .order_by(Product.sku)
    )
    facts = [_stock_fact(level, product) for level, product in rows]
    return sorted(facts, key=lambda f: (f.on_hand / max(f.reorder_point, 1), f.sku))


async def units_used(
    session: AsyncSession, company: Company, period: Period, *, limit: int | None = None
) -> list[tuple[StockFact, int]]:
    """Units of each product the company used in the period, most used first."""
    used = func.sum(DailySale.units).label("used")
    query = (
        select(StockLevel, Product, used)
        .join(Product, Product.id == StockLevel.product_id)
        .join(
            DailySale,
            and_(
                DailySale.product_id == StockLevel.product_id,
                DailySale.company_id == StockLevel.company_id,
            ),
        )
        .where(
            StockLevel.company_id == company.id,
            DailySale.day >= period.start,
            DailySale.day <= period.end,
        )
        .group_by(StockLevel.id, Product.id)
        .order_by(used.desc(), Product.sku)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = await session.execute(query)
    return [(_stock_fact(level, product), int(n or 0)) for level, product, n in rows]


# -- patients -------------------------------------------------------------------------


async def examinations(session: AsyncSession, company: Company, period: Period) -> int:
    """Eye examinations a practice recorded in the period (a count; no patient data)."""
    first, after = period.utc_bounds(company)
    query = select(func.count(Examination.id)).where(
        Examination.company_id == company.id,
        Examination.examined_at >= first,
        Examination.examined_at < after,
    )
    return int(await session.scalar(query) or 0)


# -- chat -----------------------------------------------------------------------------


async def orders_in_statuses(
    session: AsyncSession, company: Company, statuses: Sequence[OrderStatus]
) -> list[OrderFact]:
    """Orders now in one of ``statuses``, the earliest due first: what a chat answer
    lists after "which orders are in production?"."""
    query = _order_facts(company).where(Order.status.in_(statuses))
    return await _orders(session, query.order_by(Order.due_date.nulls_last(), Order.number))


async def invoices_issued(session: AsyncSession, company: Company, period: Period) -> int:
    """Invoices (void ones excepted) the company issued in the period: a revenue figure
    is easier to check with its invoice count beside it."""
    query = select(func.count(Invoice.id)).where(*invoiced_in(company, period))
    return int(await session.scalar(query) or 0)


async def payables(session: AsyncSession, company: Company, today: date) -> Receivables:
    """What the company owes: unpaid invoices addressed to it (a practice's bills from
    its labs), the mirror of :func:`receivables`."""
    return await _unpaid(session, Invoice.customer_id == company.id, today)


async def mentions_patient(session: AsyncSession, company: Company, text: str) -> bool:
    """Whether ``text`` contains the full name of a patient the company can see (its own,
    or those of the orders made for a lab). Chat declines such questions; the match
    runs in the database, so no name is ever read into the worker."""
    if company.kind is CompanyKind.PRACTICE:
        scope = Patient.company_id == company.id
    else:
        scope = Patient.id.in_(select(Order.patient_id).where(orders_side(company)))
    full_name = func.lower(Patient.first_name + " " + Patient.last_name)
    needle = literal(" ".join(text.lower().split()))
    found = await session.scalar(select(Patient.id).where(scope, needle.contains(full_name)))
    return found is not None


async def orders_moved_to(
    session: AsyncSession, company: Company, period: Period, status: OrderStatus
) -> int:
    """Orders that moved to ``status`` in the period ("how many did we deliver last
    week?"); :func:`orders_shipped` is this for ``shipped``."""
    first, after = period.utc_bounds(company)
    query = (
        select(func.count(func.distinct(OrderStatusChange.order_id)))
        .join(Order, Order.id == OrderStatusChange.order_id)
        .where(
            orders_side(company),
            OrderStatusChange.to_status == status,
            OrderStatusChange.changed_at >= first,
            OrderStatusChange.changed_at < after,
        )
    )
    return int(await session.scalar(query) or 0)
