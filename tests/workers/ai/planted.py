"""A lab with planted facts for the AI job tests: what the answers must find.

``TODAY`` is the lab's local date the clock is set to. Planted:

* orders overdue (due before today, still open: in production, accepted, on hold),
  one shipped late (not overdue any more), one due today, one due next week;
* two products at or below their reorder point, two well stocked, each with 180
  days of usage with a weekly rhythm (the forecast's input);
* 120 days of invoices with a weekly rhythm and one planted revenue spike
  yesterday (the anomaly run's find);
* managers who receive briefings (an admin and a company admin), a staff member
  and an inactive admin who do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.domain.billing import Invoice, InvoiceLine, InvoiceStatus, VatTreatment
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.orders import LensDesign, Order, OrderStatus, OrderStatusChange
from ils.domain.supply import DailySale, Product, ProductCategory, StockLevel

TODAY = date(2026, 11, 20)
#: 09:00 in London on TODAY (GMT in November).
NOW = datetime.combine(TODAY, time(9, 0), UTC)
WEEK = (1.25, 1.15, 1.1, 1.05, 1.0, 0.35, 0.1)
HISTORY_DAYS = 180
REVENUE_DAYS = 120
#: The planted revenue spike: yesterday's invoices are this many times a normal day's.
SPIKE = 4.0


@dataclass
class Planted:
    """The records and the facts the tests expect to be found."""

    lab: Company
    practice: Company
    managers: list[User]
    staff: User
    inactive_admin: User
    overdue_numbers: list[str]
    due_today: list[str]
    low_skus: list[str]
    stocked_skus: list[str]
    products: dict[str, Product] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)


def _user(company: Company, email: str, role: Role, *, active: bool = True) -> User:
    return User(
        company_id=company.id,
        email=email,
        name=email.split("@")[0].title(),
        password_hash="x",
        role=role,
        is_active=active,
    )


def _order(
    number: str,
    practice: Company,
    lab: Company,
    patient: Patient,
    status: OrderStatus,
    due: date,
    created: datetime,
) -> Order:
    return Order(
        number=number,
        company_id=practice.id,
        lab_id=lab.id,
        patient_id=patient.id,
        status=status,
        lens_design=LensDesign.SINGLE_VISION,
        right_sphere=Decimal("-1.00"),
        left_sphere=Decimal("-1.25"),
        pd_binocular=Decimal("63.0"),
        due_date=due,
        created_at=created,
        updated_at=created,
    )


async def plant(sessions: async_sessionmaker[AsyncSession], seed: int = 11) -> Planted:
    """Write the planted lab; returns what the tests look for."""
    rng = np.random.default_rng(seed)
    lab = Company(kind=CompanyKind.LAB, name="Planted Lab", time_zone="Europe/London")
    practice = Company(kind=CompanyKind.PRACTICE, name="Riverside Optics")
    supplier = Company(kind=CompanyKind.SUPPLIER, name="Blank Supplies")
    async with sessions() as session, session.begin():
        session.add_all([lab, practice, supplier])
        await session.flush()
        managers = [
            _user(lab, "admin@planted.example", Role.ADMIN),
            _user(lab, "manager@planted.example", Role.COMPANY_ADMIN),
        ]
        staff = _user(lab, "staff@planted.example", Role.STAFF)
        inactive = _user(lab, "gone@planted.example", Role.ADMIN, active=False)
        patient = Patient(company_id=practice.id, first_name="Pat", last_name="Planted")
        session.add_all([*managers, staff, inactive, patient])
        await session.flush()
        planted = Planted(
            lab, practice, managers, staff, inactive, [], [], ["LB-LOW-1", "LB-LOW-2"], []
        )
        await _orders(session, planted, patient)
        await _stock(session, planted, supplier, rng)
        await _revenue(session, planted, rng)
    return planted


async def _orders(session: AsyncSession, planted: Planted, patient: Patient) -> None:
    lab, practice = planted.lab, planted.practice
    created = datetime.combine(TODAY - timedelta(days=12), time(10), UTC)
    rows = [
        ("ORD-2026-000101", OrderStatus.IN_PRODUCTION, TODAY - timedelta(days=5)),
        ("ORD-2026-000102", OrderStatus.ACCEPTED, TODAY - timedelta(days=2)),
        ("ORD-2026-000103", OrderStatus.ON_HOLD, TODAY - timedelta(days=1)),
        ("ORD-2026-000104", OrderStatus.SHIPPED, TODAY - timedelta(days=3)),
        ("ORD-2026-000105", OrderStatus.QUALITY_CHECK, TODAY),
        ("ORD-2026-000106", OrderStatus.SUBMITTED, TODAY + timedelta(days=7)),
    ]
    for number, status, due in rows:
        order = _order(number, practice, lab, patient, status, due, created)
        session.add(order)
        planted.orders[number] = order
    await session.flush()
    shipped = planted.orders["ORD-2026-000104"]
    session.add(
        OrderStatusChange(
            order_id=shipped.id,
            from_status=OrderStatus.QUALITY_CHECK,
            to_status=OrderStatus.SHIPPED,
            changed_at=created + timedelta(days=4),
        )
    )
    planted.overdue_numbers = ["ORD-2026-000101", "ORD-2026-000102", "ORD-2026-000103"]
    planted.due_today = ["ORD-2026-000105"]


async def _stock(
    session: AsyncSession, planted: Planted, supplier: Company, rng: np.random.Generator
) -> None:
    # (sku, daily mean, on hand, reorder point, lead time)
    items = [
        ("LB-LOW-1", 12.0, 10, 40, 5),
        ("LB-LOW-2", 6.0, 15, 15, 7),
        ("LB-OK-1", 8.0, 900, 30, 5),
        ("LB-OK-2", 2.0, 400, 10, 3),
    ]
    start = TODAY - timedelta(days=HISTORY_DAYS)
    for sku, mean, on_hand, reorder_point, lead in items:
        product = Product(
            company_id=supplier.id,
            sku=sku,
            name=f"Blank {sku}",
            category=ProductCategory.LENS_BLANK,
            unit_price_cents=900,
            lead_time_days=lead,
        )
        session.add(product)
        await session.flush()
        planted.products[sku] = product
        planted.stocked_skus.append(sku)
        session.add(
            StockLevel(
                company_id=planted.lab.id,
                product_id=product.id,
                on_hand=on_hand,
                reorder_point=reorder_point,
            )
        )
        for offset in range(HISTORY_DAYS):
            day = start + timedelta(days=offset)
            units = int(rng.poisson(mean * WEEK[day.weekday()]))
            if units:
                session.add(
                    DailySale(
                        company_id=planted.lab.id, product_id=product.id, day=day, units=units
                    )
                )


async def _revenue(session: AsyncSession, planted: Planted, rng: np.random.Generator) -> None:
    yesterday = TODAY - timedelta(days=1)
    for offset in range(REVENUE_DAYS, 0, -1):
        day = TODAY - timedelta(days=offset)
        mean = 20_000 * WEEK[day.weekday()]
        cents = int(rng.normal(mean, mean * 0.08))
        if day == yesterday:
            cents = int(cents * SPIKE)
        invoice = Invoice(
            number=f"INV-2026-{offset:05d}",
            company_id=planted.lab.id,
            customer_id=planted.practice.id,
            issued_on=day,
            due_on=day + timedelta(days=30),
            status=InvoiceStatus.ISSUED,
            lines=[
                InvoiceLine(
                    description="Lenses",
                    quantity=1,
                    unit_price_cents=max(cents, 0),
                    vat_treatment=VatTreatment.STANDARD,
                    vat_rate_bp=2000,
                )
            ],
        )
        session.add(invoice)
