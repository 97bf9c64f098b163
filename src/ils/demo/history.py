"""The history half of the demo network: 120 days of sales, orders, invoices, payments.

``NetworkBuilder`` (``demo_network``) inherits this and adds the cast (companies,
users, patients, products) and the order of the build; the split keeps the
simulation of the past (weekly rhythm, trend, remakes, late orders, payments) apart
from the fixed people and places it runs over. Every draw comes from the one seeded
``rng``, in the same order, so two builds still give the same network.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    VatTreatment,
)
from ils.domain.clinical import Patient
from ils.domain.companies import Company, User
from ils.domain.lens_options import Coating, LensType
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.orders import LensDesign, Order, OrderStatus, OrderStatusChange
from ils.domain.supply import DailySale, Product, StockLevel
from ils.domain.types import new_id

#: Share of orders that remake an earlier order of the same practice and patient.
REMAKE_SHARE = 0.04
#: Designs made to a fitting or segment height (the API requires one for them).
HEIGHT_DESIGNS = frozenset({LensDesign.PROGRESSIVE, LensDesign.BIFOCAL})
#: Orders up to this many days old may still be in production past their due date
#: (seven days after ordering), with this probability: the briefing's overdue list.
LATE_WINDOW_DAYS = 12
LATE_SHARE = 0.1
WEEKDAY_FACTOR = (1.25, 1.1, 1.0, 1.0, 1.2, 0.55, 0.15)  # Monday .. Sunday


class HistoryBuilder:
    """Writes the network's past into ``session``, drawing from ``rng``."""

    def __init__(
        self, session: AsyncSession, *, today: date, days: int, rng: random.Random
    ) -> None:
        self.session = session
        self.today = today
        self.days = days
        self.rng = rng
        #: Orders placed so far per practice, as (order id, patient id): remakes
        #: pick one of them.
        self._placed: dict[str, list[tuple[str, str]]] = {}

    def _sales_history(self, lab: Company, products: list[tuple[Product, float]]) -> None:
        for product, daily in products:
            self.session.add(
                StockLevel(
                    company_id=lab.id,
                    product=product,
                    on_hand=int(daily * self.rng.uniform(4, 20)) + 2,
                    reorder_point=int(daily * 7) + 1,
                )
            )
            for offset in range(self.days, 0, -1):
                day = self.today - timedelta(days=offset)
                trend = 1 + 0.15 * (self.days - offset) / self.days
                mean = daily * WEEKDAY_FACTOR[day.weekday()] * trend
                units = self._poisson(mean)
                if units:
                    self.session.add(
                        DailySale(company_id=lab.id, product=product, day=day, units=units)
                    )

    async def _orders(
        self,
        lab: Company,
        practices: list[Company],
        patients: dict[str, list[Patient]],
        practice_users: dict[str, list[User]],
        lab_users: list[User],
    ) -> None:
        for offset in range(self.days, -1, -1):
            day = self.today - timedelta(days=offset)
            for practice in practices:
                for _ in range(self._poisson(3.0 * WEEKDAY_FACTOR[day.weekday()])):
                    await self._order(
                        lab,
                        practice,
                        patients[practice.id],
                        practice_users[practice.id],
                        lab_users,
                        offset,
                    )

    async def _order(
        self,
        lab: Company,
        practice: Company,
        patients: list[Patient],
        users: list[User],
        lab_users: list[User],
        age_days: int,
    ) -> None:
        created = self._moment(age_days)
        status = self._status_for_age(age_days)
        design = self.rng.choice(list(LensDesign))
        placed = self._placed.setdefault(practice.id, [])
        # About one order in 25 remakes an earlier one (a power or fitting problem).
        remake_of, patient_id = None, self.rng.choice(patients).id
        if placed and self.rng.random() < REMAKE_SHARE:
            remake_of, patient_id = self.rng.choice(placed)
        add = None if design is LensDesign.SINGLE_VISION else Decimal("2.00")
        height = Decimal("22.00") if design in HEIGHT_DESIGNS else None
        order = Order(
            id=new_id(),  # set now, so the whole history is flushed in one go
            number=await allocate_number(self.session, NumberKind.ORDER, year=created.year),
            company_id=practice.id,
            lab_id=lab.id,
            patient_id=patient_id,
            remake_of_id=remake_of,
            created_by=users[-1].id,
            status=status,
            lens_design=design,
            right_sphere=self._dioptres(-8, 6),
            left_sphere=self._dioptres(-8, 6),
            right_cylinder=Decimal("-0.75"),
            right_axis=self.rng.randint(1, 180),
            left_cylinder=Decimal("0.00"),
            # The API's rules (docs/platform.md): an add for every multifocal, a fitting
            # or segment height for progressives and bifocals, lens options as codes.
            right_add=add,
            left_add=add,
            seg_height_right=height,
            seg_height_left=height,
            pd_binocular=Decimal(self.rng.choice(("60.0", "62.0", "64.0", "66.0"))),
            lens_material=LensType.CR39,
            lens_index=Decimal(self.rng.choice(("1.50", "1.60", "1.67"))),
            coatings=[Coating.ANTI_REFLECTIVE.value, Coating.HARD_COAT.value],
            frame_box_a=Decimal("52.00"),
            frame_box_b=Decimal("38.00"),
            frame_dbl=Decimal("18.00"),
            frame_ed=Decimal("55.00"),
            due_date=created.date() + timedelta(days=7),
            price_cents=self.rng.choice((6500, 8900, 12900, 18900)),
            created_at=created,
            updated_at=created,
        )
        placed.append((order.id, patient_id))
        if status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            order.tracking_number = f"1Z{self.rng.randint(10**8, 10**9 - 1)}"
            order.carrier = "Royal Mail"
        self.session.add(order)
        await self.session.flush()
        self.session.add(
            OrderStatusChange(
                order_id=order.id,
                from_status=None,
                to_status=OrderStatus.SUBMITTED,
                changed_by=users[-1].id,
                changed_at=created,
            )
        )
        if status is not OrderStatus.SUBMITTED:
            self.session.add(
                OrderStatusChange(
                    order_id=order.id,
                    from_status=OrderStatus.SUBMITTED,
                    to_status=status,
                    changed_by=lab_users[1].id,
                    changed_at=created + timedelta(days=1),
                )
            )
        if status is OrderStatus.DELIVERED:
            await self._invoice(order, created)

    async def _invoice(self, order: Order, created: datetime) -> None:
        issued = created.date() + timedelta(days=6)
        invoice = Invoice(
            number=await allocate_number(
                self.session, NumberKind.INVOICE, year=issued.year, company_id=order.lab_id
            ),
            company_id=order.lab_id,
            customer_id=order.company_id,
            order_id=order.id,
            issued_on=issued,
            due_on=issued + timedelta(days=30),
            status=InvoiceStatus.ISSUED,
        )
        price = order.price_cents or 0
        invoice.lines = [
            InvoiceLine(
                position=0,
                description="Spectacle lenses (pair)",
                quantity=1,
                unit_price_cents=price,
                vat_treatment=VatTreatment.STANDARD,
                vat_rate_bp=2000,
            ),
            InvoiceLine(
                position=1,
                description="Dispensing service",
                quantity=1,
                unit_price_cents=1500,
                vat_treatment=VatTreatment.EXEMPT,
                vat_rate_bp=0,
            ),
        ]
        self.session.add(invoice)
        if issued < self.today - timedelta(days=10) and self.rng.random() < 0.85:
            total = invoice.totals().gross_cents
            invoice.payments = [
                Payment(
                    company_id=order.lab_id,
                    amount_cents=total,
                    method=PaymentMethod.BANK_TRANSFER,
                    received_at=self._moment((self.today - issued).days - 8),
                )
            ]
            invoice.status = InvoiceStatus.PAID

    def _status_for_age(self, age_days: int) -> OrderStatus:
        if age_days > 14:
            return OrderStatus.CANCELLED if self.rng.random() < 0.03 else OrderStatus.DELIVERED
        if age_days > 7:
            # A few orders run late: still in production after their due date.
            late = age_days <= LATE_WINDOW_DAYS and self.rng.random() < LATE_SHARE
            return OrderStatus.IN_PRODUCTION if late else OrderStatus.SHIPPED
        if age_days > 4:
            return self.rng.choice((OrderStatus.IN_PRODUCTION, OrderStatus.QUALITY_CHECK))
        if age_days > 1:
            return OrderStatus.ACCEPTED
        return OrderStatus.SUBMITTED

    def _moment(self, age_days: int) -> datetime:
        day = self.today - timedelta(days=max(age_days, 0))
        return datetime.combine(day, time(self.rng.randint(8, 17), self.rng.randint(0, 59)), UTC)

    def _dioptres(self, low: int, high: int) -> Decimal:
        return Decimal(self.rng.randint(low * 4, high * 4)) / 4

    def _poisson(self, mean: float) -> int:
        # Knuth's method: small means only, which is all the demo needs.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1
