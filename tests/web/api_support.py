"""Helpers shared by the platform API tests: queued jobs, row counts, request bodies.

In the tests the app runs in local mode without workers, so a job queued by a request
goes through the outbox (in the request's transaction), is relayed to the local store
after commit and stays ``waiting`` there, payload and all.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select

from ils.db.engine import Base
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.supply import Product
from ils.jobs.model import JobRecord, JobState
from ils.web.state import WebState
from tests.web.conftest import DbMaker, Factory, SignedIn

QUEUES = ("email", "pdf", "notification", "ai", "oma", "scheduled")


async def queued(state: WebState, queue: str, name: str | None = None) -> list[JobRecord]:
    """The waiting jobs of ``queue`` (named ``name`` when given), oldest first."""
    outbox = state.system.producer.outbox
    await outbox.drain_tasks()
    await outbox.relay()
    jobs = await state.system.local.list_jobs(queue, JobState.WAITING, limit=1000)
    return [job for job in reversed(jobs) if name is None or job.name == name]


async def all_jobs(state: WebState) -> int:
    """Every job anywhere: waiting in any queue, or still in the outbox."""
    outbox = state.system.producer.outbox
    await outbox.drain_tasks()
    total = await outbox.pending()
    for queue in QUEUES:
        total += sum((await state.system.local.counts(queue)).values())
    return total


async def count(db: DbMaker, model: type[Base]) -> int:
    """Rows of ``model``'s table."""
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def patient_of(factory: Factory, practice: Company, **fields: Any) -> Patient:
    """A patient of ``practice``."""
    patient = Patient(
        company_id=practice.id,
        first_name=fields.pop("first_name", "Ada"),
        last_name=fields.pop("last_name", "Lovelace"),
        date_of_birth=fields.pop("date_of_birth", date(1980, 12, 10)),
        **fields,
    )
    await factory.add(patient)
    return patient


def accepted_connection(requester_id: str, target_id: str) -> Connection:
    """The row of an accepted marketplace connection, for any session to add: orders
    and purchase orders need one between the two companies (docs/platform.md)."""
    return Connection(
        requester_id=requester_id, target_id=target_id, status=ConnectionStatus.ACCEPTED
    )


async def connect(factory: Factory, requester: Company, target: Company) -> Connection:
    """Connect two companies on the marketplace (accepted), so they may trade."""
    connection = accepted_connection(requester.id, target.id)
    await factory.add(connection)
    return connection


def order_body(patient_id: str, lab_id: str, /, **overrides: Any) -> dict[str, Any]:
    """A valid progressive order; ``overrides`` replace top-level fields."""
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "lab_id": lab_id,
        "lens": {
            "design": "progressive",
            "material": "polycarbonate",
            "index": "1.60",
            "coatings": ["anti_reflective", "hard_coat"],
        },
        "right": {"sphere": -2.25, "cylinder": -0.75, "axis": 180, "add": 2.0},
        "left": {"sphere": "-2.00", "cylinder": 0, "add": "2.00", "prism": 1.5, "prism_base": "in"},
        "pd_right": 31.5,
        "pd_left": 32,
        "seg_height_right": 22,
        "seg_height_left": 22,
        "frame": {"brand": "Ray-Ban", "model": "RB5154", "box_a": 51, "box_b": 40.5, "dbl": 21},
        "due_date": "2030-01-15",
        "price_cents": 12_500,
        "notes": "Please rush.\nThanks.",
    }
    body.update(overrides)
    return body


def errors_of(response: httpx.Response) -> dict[str, str]:
    """A 422 body as ``{field: message}``."""
    assert response.status_code == 422, response.text
    return {item["field"]: item["message"] for item in response.json()["detail"]}


class World:
    """A practice and a lab with users of every role, and signed-in clients.

    ``clients[(kind, role)]`` is a client signed in as that user; ``users`` the same
    keys to the users. A stranger practice and lab exist for the 404 tests.
    """

    def __init__(self) -> None:
        self.companies: dict[str, Company] = {}
        self.users: dict[tuple[CompanyKind, Role], User] = {}
        self.clients: dict[tuple[CompanyKind, Role], httpx.AsyncClient] = {}
        self.patients: list[Patient] = []
        self.products: list[Product] = []

    @property
    def practice(self) -> Company:
        return self.companies["practice"]

    @property
    def lab(self) -> Company:
        return self.companies["lab"]

    @property
    def patient(self) -> Patient:
        """The first patient of the practice."""
        return self.patients[0]

    def client(self, kind: CompanyKind, role: Role = Role.STAFF) -> httpx.AsyncClient:
        return self.clients[(kind, role)]

    def user(self, kind: CompanyKind, role: Role = Role.STAFF) -> User:
        return self.users[(kind, role)]


async def build_world(
    factory: Factory,
    signed_in: SignedIn,
    roles: dict[CompanyKind, tuple[Role, ...]],
) -> World:
    """Companies of every kind in ``roles`` with a signed-in user per role."""
    world = World()
    for kind, kind_roles in roles.items():
        company = await factory.company(kind, name=f"The {kind.value.title()}")
        world.companies[kind.value] = company
        for role in kind_roles:
            client, user = await signed_in(role, kind, company=company)
            world.clients[(kind, role)] = client
            world.users[(kind, role)] = user
    return world


# -- orders --------------------------------------------------------------------------


async def order_world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice (admin, staff, and an oddly placed lab_tech), a lab (admin, staff,
    lab_tech) connected to it, a supplier (staff), and a patient of the practice."""
    world = await build_world(
        factory,
        signed_in,
        {
            CompanyKind.PRACTICE: (Role.ADMIN, Role.STAFF, Role.LAB_TECH),
            CompanyKind.LAB: (Role.ADMIN, Role.STAFF, Role.LAB_TECH),
            CompanyKind.SUPPLIER: (Role.STAFF,),
        },
    )
    world.patients.append(await patient_of(factory, world.practice))
    await connect(factory, world.practice, world.lab)
    return world


def body_for(world: World, **overrides: Any) -> dict[str, Any]:
    """A valid order of the world's patient with its lab."""
    return order_body(world.patient.id, world.lab.id, **overrides)


async def place(world: World, **overrides: Any) -> dict[str, Any]:
    """Place an order as the practice's staff user; the response body."""
    response = await world.client(CompanyKind.PRACTICE).post(
        "/api/orders", json=body_for(world, **overrides)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def move(
    world: World, order_id: str, status: str, kind: CompanyKind = CompanyKind.LAB
) -> None:
    """Change the order's status as ``kind``'s staff user (which must succeed)."""
    response = await world.client(kind).post(
        f"/api/orders/{order_id}/status", json={"status": status}
    )
    assert response.status_code == 200, response.text
