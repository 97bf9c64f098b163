"""The demo network of ``ils demo``: a lab, three practices, a supplier, users of every
role, patients, products and 120 days of order, invoice and sales history.

History is written straight to the database (no jobs: it happened in the past) with a
seeded random generator, so two builds give the same network. Demand has a weekly
rhythm (busy Monday and Friday, quiet weekend) and a slow upward trend, so the
forecasting and anomaly jobs have something real to find.

This module holds the cast (companies, users, patients, products) and the order of
the build; the history itself is written by ``demo_history``.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.demo.history import HistoryBuilder
from ils.domain.clinical import Examination, Patient, SightTestOutcome
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.supply import Product, ProductCategory

LAB_NAME = "Clear View Lens Lab"
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


class NetworkBuilder(HistoryBuilder):
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
        super().__init__(session, today=today, days=days, rng=random.Random(seed))
        self.password_hash = password_hash
        self.step = step
        self.accounts: list[DemoAccount] = []

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
        supplier_users = self._users(
            supplier, "prism-supply", [("Alex Moreno", Role.COMPANY_ADMIN)]
        )
        await self.session.flush()
        self.step("users")
        patients = {p.id: self._patients(p, 40) for p in practices}
        await self.session.flush()
        self._examinations(practices, patients, practice_users)
        self.step("patients")
        products = self._products(supplier, lab)
        self._sales_history(lab, products)
        self.step("products and sales")
        # Ordering needs an accepted connection (docs/platform.md): the network was
        # connected before its first order.
        self._connections(lab, lab_users[1], practices, practice_users, supplier_users[0])
        await self.session.flush()
        self.step("marketplace")
        # Number allocation queries would otherwise flush after every order.
        with self.session.sync_session.no_autoflush:
            await self._orders(lab, practices, patients, practice_users, lab_users)
        await self.session.flush()
        self.step("orders and invoices")
        return self.accounts

    def _connections(
        self,
        lab: Company,
        lab_admin: User,
        practices: list[Company],
        practice_users: dict[str, list[User]],
        supplier_admin: User,
    ) -> None:
        """Each practice asked the lab, and the lab asked the supplier, a fortnight
        before the history starts; each request was accepted the next day."""
        asked = datetime.combine(
            self.today - timedelta(days=self.days + 14), time(9, 30), tzinfo=UTC
        )
        pairs = [
            (practice.id, lab.id, practice_users[practice.id][0], lab_admin)
            for practice in practices
        ]
        pairs.append((lab.id, supplier_admin.company_id, lab_admin, supplier_admin))
        for requester_id, target_id, requested_by, decided_by in pairs:
            self.session.add(
                Connection(
                    requester_id=requester_id,
                    target_id=target_id,
                    status=ConnectionStatus.ACCEPTED,
                    requested_by=requested_by.id,
                    decided_by=decided_by.id,
                    created_at=asked,
                    decided_at=asked + timedelta(days=1),
                )
            )

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
                examined_at = self._moment(self.rng.randint(1, self.days))
                examiner = users[practice.id][0]
                self.session.add(
                    Examination(
                        company_id=practice.id,
                        patient_id=patient.id,
                        examiner_id=examiner.id,
                        examined_at=examined_at,
                        va_right="6/6",
                        va_left="6/9",
                        right_sphere=self._dioptres(-6, 4),
                        left_sphere=self._dioptres(-6, 4),
                        iop_right=Decimal("15.00"),
                        iop_left=Decimal("16.00"),
                        recommendations="Review in 24 months.",
                        **self._sight_test(examined_at.date(), examiner.name),
                    )
                )

    @staticmethod
    def _sight_test(examined_on: date, optometrist: str) -> dict[str, object]:
        """A routine sight test's record, as the API would store it (no random draws:
        the rest of the network stays the same seed for seed)."""
        return {
            "history": {
                "reason_for_visit": "Routine eye examination",
                "symptoms": "Near vision blurred late in the day",
                "general_health": "Good",
                "medication": "None",
            },
            "acuity": {
                "right": {"unaided_distance": "6/12", "aided_distance": "6/6", "aided_near": "N5"},
                "left": {"unaided_distance": "6/18", "aided_distance": "6/9", "aided_near": "N5"},
                "binocular": {"aided_distance": "6/6", "aided_near": "N5"},
            },
            "binocular_vision": {
                "cover_test_distance": "orthophoria",
                "cover_test_near": "slight exophoria, good recovery",
                "motility": "full, smooth",
                "near_point_of_convergence": "8 cm",
            },
            "ophthalmoscopy": {
                "method": "slit_lamp_binocular_indirect",
                "right": {"media": "clear", "cup_disc_ratio": 0.3, "macula": "healthy"},
                "left": {"media": "clear", "cup_disc_ratio": 0.3, "macula": "healthy"},
            },
            "outcome": SightTestOutcome.NEW_RX,
            "recall_date": examined_on + timedelta(days=730),
            "optometrist_name": optometrist,
            "goc_number": "01-23456",
        }

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
    "marketplace",
    "orders and invoices",
)
