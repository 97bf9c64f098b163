"""The demo network of ``ils demo``: a lab, three practices, a supplier, users of every
role, patients, products and 120 days of order, invoice and sales history.

History is written straight to the database (no jobs: it happened in the past) with a
seeded random generator, so two builds give the same network. Demand has a weekly
rhythm (busy Monday and Friday, quiet weekend) and a slow upward trend, so the
forecasting and anomaly jobs have something real to find.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.domain.billing import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    VatTreatment,
)
from ils.domain.clinical import Examination, Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.orders import LensDesign, Order, OrderStatus, OrderStatusChange
from ils.domain.supply import DailySale, Product, ProductCategory, StockLevel
from ils.domain.types import new_id

LAB_NAME = "Clear View Lens Lab"
#: Share of orders that remake an earlier order of the same practice and patient.
REMAKE_SHARE = 0.04
#: Orders up to this many days old may still be in production past their due date
#: (seven days after ordering), with this probability: the briefing's overdue list.
LATE_WINDOW_DAYS = 12
LATE_SHARE = 0.1
WEEKDAY_FACTOR = (1.25, 1.1, 1.0, 1.0, 1.2, 0.55, 0.15)  # Monday .. Sunday
FIRST_NAMES = (
    "Amelia",
    "Oliver",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Arthur",
    "Ivy",
    "Leo",
    "Freya",
    "Oscar",
    "Lily",
    "Harry",
    "Grace",
    "Jack",
    "Rosie",
    "Theo",
)
LAST_NAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Evans",
    "Khan",
    "Patel",
    "Walker",
    "Wright",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
)
PRODUCTS = (
    ("SV-150", "Single vision 1.50 blank", ProductCategory.LENS_BLANK, 650, 3, 14.0),
    ("SV-160", "Single vision 1.60 blank", ProductCategory.LENS_BLANK, 1150, 4, 9.0),
    ("SV-167", "Single vision 1.67 blank", ProductCategory.LENS_BLANK, 1900, 5, 4.0),
    ("PR-150", "Progressive 1.50 blank", ProductCategory.LENS_BLANK, 2400, 5, 5.0),
    ("PR-160", "Progressive 1.60 blank", ProductCategory.LENS_BLANK, 3300, 6, 3.5),
    ("BF-150", "Bifocal 1.50 blank", ProductCategory.LENS_BLANK, 1300, 7, 0.6),
    ("AR-STD", "Anti-reflection coating", ProductCategory.COATING, 400, 2, 11.0),
    ("BL-FLT", "Blue-light filter coating", ProductCategory.COATING, 550, 2, 3.0),
    ("FR-MET", "Metal frame, stock", ProductCategory.FRAME, 1800, 10, 1.5),
    ("CN-POL", "Polishing compound", ProductCategory.CONSUMABLE, 2200, 14, 0.3),
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A sign-in of the demo network."""

    email: str
    role: Role
    company: str


def demo_password() -> str:
    """A fresh password for the demo accounts (printed, never stored in the clear)."""
    return secrets.token_urlsafe(9)


async def network_exists(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether the demo network was built in this database already."""
    async with sessions() as session:
        found = await session.scalar(select(Company.id).where(Company.name == LAB_NAME))
    return found is not None


Step = Callable[[str], None]


class NetworkBuilder:
    """Builds the network in one session; ``step`` reports progress by phase name."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        today: date,
        days: int,
        seed: int,
        password_hash: str,
        step: Step,
    ) -> None:
        self.session = session
        self.today = today
        self.days = days
        self.rng = random.Random(seed)
        self.password_hash = password_hash
        self.step = step
        self.accounts: list[DemoAccount] = []
        #: Orders placed so far per practice, as (order id, patient id): remakes
        #: pick one of them.
        self._placed: dict[str, list[tuple[str, str]]] = {}

    async def build(self) -> list[DemoAccount]:
        lab, practices, supplier = self._companies()
        await self.session.flush()  # ids come from the column default, at flush
        self.step("companies")
        lab_users = self._users(
            lab,
            "clearview-lab",
            [
                ("Priya Shah", Role.PLATFORM_ADMIN),
                ("Tom Reid", Role.ADMIN),
                ("Hannah Cole", Role.COMPANY_ADMIN),
                ("Sam Ortiz", Role.LAB_TECH),
                ("Jo Baker", Role.STAFF),
            ],
        )
        practice_users = {
            p.id: self._users(
                p,
                slug,
                [
                    ("Dr " + self.rng.choice(LAST_NAMES), Role.ADMIN),
                    (self._name(), Role.COMPANY_ADMIN),
                    (self._name(), Role.STAFF),
                ],
            )
            for p, slug in zip(practices, ("brightside", "harbour", "northgate"), strict=True)
        }
        self._users(supplier, "prism-supply", [("Alex Moreno", Role.COMPANY_ADMIN)])
        await self.session.flush()
        self.step("users")
        patients = {p.id: self._patients(p, 40) for p in practices}
        await self.session.flush()
        self._examinations(practices, patients, practice_users)
        self.step("patients")
        products = self._products(supplier, lab)
        self._sales_history(lab, products)
        self.step("products and sales")
        await self.session.flush()
        # Number allocation queries would otherwise flush after every order.
        with self.session.sync_session.no_autoflush:
            await self._orders(lab, practices, patients, practice_users, lab_users)
        await self.session.flush()
        self.step("orders and invoices")
        for practice in practices:
            self.session.add(
                Connection(
                    requester_id=practice.id, target_id=lab.id, status=ConnectionStatus.ACCEPTED
                )
            )
        self.session.add(
            Connection(requester_id=lab.id, target_id=supplier.id, status=ConnectionStatus.ACCEPTED)
        )
        await self.session.flush()
        self.step("marketplace")
        return self.accounts

    def _name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def _companies(self) -> tuple[Company, list[Company], Company]:
        lab = Company(
            kind=CompanyKind.LAB,
            name=LAB_NAME,
            address_line1="14 Mill Street",
            city="Manchester",
            postcode="M4 6AJ",
            vat_number="GB123456789",
            email="orders@clearview-lab.example",
            primary_color="#1f6feb",
            logo_text="CLEAR VIEW",
        )
        practices = [
            Company(
                kind=CompanyKind.PRACTICE,
                name=name,
                address_line1=street,
                city=city,
                postcode=postcode,
                email=f"hello@{slug}.example",
                primary_color=color,
            )
            for name, street, city, postcode, slug, color in (
                ("Brightside Opticians", "3 Briggate", "Leeds", "LS1 6HD", "brightside", "#b45309"),
                ("Harbour Eyecare", "22 Quay Road", "Bristol", "BS1 4QA", "harbour", "#0f766e"),
                ("Northgate Vision", "7 Stonegate", "York", "YO1 8AS", "northgate", "#7c3aed"),
            )
        ]
        supplier = Company(
            kind=CompanyKind.SUPPLIER,
            name="Prism Optical Supply",
            address_line1="Unit 5, Lakeside Park",
            city="Birmingham",
            postcode="B7 4BB",
            email="sales@prism-supply.example",
            vat_number="GB987654321",
        )
        self.session.add_all([lab, *practices, supplier])
        return lab, practices, supplier

    def _users(self, company: Company, slug: str, people: list[tuple[str, Role]]) -> list[User]:
        users = []
        for name, role in people:
            email = f"{role.value.replace('_', '-')}@{slug}.example"
            user = User(
                company=company, email=email, name=name, role=role, password_hash=self.password_hash
            )
            users.append(user)
            self.accounts.append(DemoAccount(email, role, company.name))
        self.session.add_all(users)
        return users

    def _patients(self, practice: Company, count: int) -> list[Patient]:
        patients = [
            Patient(
                company_id=practice.id,
                reference=f"P{1000 + i}",
                first_name=self.rng.choice(FIRST_NAMES),
                last_name=self.rng.choice(LAST_NAMES),
                date_of_birth=date(
                    self.rng.randint(1940, 2015), self.rng.randint(1, 12), self.rng.randint(1, 28)
                ),
            )
            for i in range(count)
        ]
        self.session.add_all(patients)
        return patients

    def _examinations(
        self,
        practices: list[Company],
        patients: dict[str, list[Patient]],
        users: dict[str, list[User]],
    ) -> None:
        for practice in practices:
            for patient in patients[practice.id][:10]:
                self.session.add(
                    Examination(
                        company_id=practice.id,
                        patient_id=patient.id,
                        examiner_id=users[practice.id][0].id,
                        examined_at=self._moment(self.rng.randint(1, self.days)),
                        va_right="6/6",
                        va_left="6/9",
                        right_sphere=self._dioptres(-6, 4),
                        left_sphere=self._dioptres(-6, 4),
                        iop_right=Decimal("15.00"),
                        iop_left=Decimal("16.00"),
                        recommendations="Review in 24 months.",
                    )
                )

    def _products(self, supplier: Company, lab: Company) -> list[tuple[Product, float]]:
        products = []
        for sku, name, category, price, lead, daily in PRODUCTS:
            product = Product(
                company_id=supplier.id,
                sku=sku,
                name=name,
                category=category,
                unit_price_cents=price,
                lead_time_days=lead,
            )
            self.session.add(product)
            products.append((product, daily))
        return products

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
            right_add=Decimal("2.00") if design is LensDesign.PROGRESSIVE else None,
            left_add=Decimal("2.00") if design is LensDesign.PROGRESSIVE else None,
            pd_binocular=Decimal(self.rng.choice(("60.0", "62.0", "64.0", "66.0"))),
            lens_material="CR-39",
            lens_index=Decimal(self.rng.choice(("1.50", "1.60", "1.67"))),
            coatings=["anti-reflection"],
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


async def build_network(
    sessions: async_sessionmaker[AsyncSession],
    *,
    today: date,
    password_hash: str,
    step: Step,
    days: int = 120,
    seed: int = 7,
) -> list[DemoAccount]:
    """Build the network in one transaction (all or nothing); the accounts made."""
    async with sessions() as session, session.begin():
        builder = NetworkBuilder(
            session, today=today, days=days, seed=seed, password_hash=password_hash, step=step
        )
        return await builder.build()


BUILD_STEPS = (
    "companies",
    "users",
    "patients",
    "products and sales",
    "orders and invoices",
    "marketplace",
)
