"""Trading needs an accepted marketplace connection (issue 23), on SQLite and PostgreSQL.

A practice orders only from a lab it is connected to, a lab sends purchase orders only
to a connected supplier; otherwise 422 on ``lab_id`` / ``supplier_id``, naming the
company, with nothing written and nothing queued (no e-mail, no PDF of a patient's
prescription for a stranger).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.demo.jobs_demo import ensure_marketplace_samples, ensure_samples
from ils.demo.network import build_network
from ils.domain.companies import CompanyKind, Role
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.orders import Order
from ils.domain.supply import Product, ProductCategory, PurchaseOrder
from ils.web.state import WebState
from tests.web.api_support import (
    World,
    all_jobs,
    body_for,
    build_world,
    connect,
    count,
    errors_of,
    patient_of,
)
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB, SUPPLIER = CompanyKind.PRACTICE, CompanyKind.LAB, CompanyKind.SUPPLIER
CONNECTIONS = "/api/marketplace/connections"


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice, a lab and a supplier (admin and staff each), not connected; a patient
    of the practice and a product of the supplier."""
    roles = (Role.ADMIN, Role.STAFF)
    world = await build_world(factory, signed_in, {PRACTICE: roles, LAB: roles, SUPPLIER: roles})
    world.patients.append(await patient_of(factory, world.practice))
    product = Product(
        company_id=world.companies["supplier"].id,
        sku="BLANK-150",
        name="1.50 blank",
        category=ProductCategory.LENS_BLANK,
        unit_price_cents=900,
        lead_time_days=2,
    )
    await factory.add(product)
    world.products.append(product)
    return world


def po_body(world: World) -> dict[str, Any]:
    return {
        "supplier_id": world.companies["supplier"].id,
        "lines": [{"product_id": world.products[0].id, "quantity": 3}],
    }


async def _connection(factory: Factory, requester_id: str, target_id: str, status: str) -> None:
    await factory.add(
        Connection(requester_id=requester_id, target_id=target_id, status=ConnectionStatus(status))
    )


async def test_an_order_to_an_unconnected_lab_is_refused(
    world: World, state: WebState, db: DbMaker
) -> None:
    response = await world.client(PRACTICE).post("/api/orders", json=body_for(world))

    assert errors_of(response) == {
        "lab_id": f"no accepted marketplace connection with {world.lab.name}"
    }
    assert await count(db, Order) == 0
    assert await all_jobs(state) == 0


@pytest.mark.parametrize("status", ["pending", "rejected"])
async def test_a_connection_not_accepted_does_not_count(
    world: World, factory: Factory, state: WebState, db: DbMaker, status: str
) -> None:
    await _connection(factory, world.practice.id, world.lab.id, status)
    await _connection(factory, world.lab.id, world.companies["supplier"].id, status)

    order = await world.client(PRACTICE).post("/api/orders", json=body_for(world))
    po = await world.client(LAB).post("/api/purchase-orders", json=po_body(world))

    assert list(errors_of(order)) == ["lab_id"]
    assert list(errors_of(po)) == ["supplier_id"]
    assert await count(db, Order) == 0
    assert await count(db, PurchaseOrder) == 0
    assert await all_jobs(state) == 0


async def test_another_companys_connection_does_not_count(world: World, factory: Factory) -> None:
    """The lab being connected to some practice does not open it to this one."""
    other_practice = await factory.company(PRACTICE)
    await connect(factory, other_practice, world.lab)
    response = await world.client(PRACTICE).post("/api/orders", json=body_for(world))
    assert list(errors_of(response)) == ["lab_id"]


async def test_connecting_through_the_marketplace_opens_ordering(world: World) -> None:
    """The whole path: the practice asks, the lab accepts, then the order goes through."""
    asked = await world.client(PRACTICE, Role.ADMIN).post(
        CONNECTIONS, json={"target_id": world.lab.id}
    )
    assert asked.status_code == 201, asked.text
    while_pending = await world.client(PRACTICE).post("/api/orders", json=body_for(world))
    assert list(errors_of(while_pending)) == ["lab_id"]

    accepted = await world.client(LAB, Role.ADMIN).post(
        f"{CONNECTIONS}/{asked.json()['id']}/accept"
    )
    assert accepted.status_code == 200, accepted.text

    response = await world.client(PRACTICE).post("/api/orders", json=body_for(world))
    assert response.status_code == 201, response.text


async def test_a_connection_counts_whichever_company_asked(world: World, factory: Factory) -> None:
    await connect(factory, world.lab, world.practice)  # the lab asked, the practice accepted
    await connect(factory, world.companies["supplier"], world.lab)

    order = await world.client(PRACTICE).post("/api/orders", json=body_for(world))
    po = await world.client(LAB).post("/api/purchase-orders", json=po_body(world))

    assert order.status_code == 201, order.text
    assert po.status_code == 201, po.text


async def test_a_purchase_order_to_an_unconnected_supplier_is_refused(
    world: World, factory: Factory, state: WebState, db: DbMaker
) -> None:
    # Connected to the practice, which is no supplier: still nothing to the supplier.
    await connect(factory, world.practice, world.lab)

    response = await world.client(LAB).post("/api/purchase-orders", json=po_body(world))

    supplier = world.companies["supplier"]
    assert errors_of(response) == {
        "supplier_id": f"no accepted marketplace connection with {supplier.name}"
    }
    assert await count(db, PurchaseOrder) == 0
    assert await all_jobs(state) == 0


# -- the demo data keeps the rule ---------------------------------------------------------


async def _trade_without_connection(session: AsyncSession) -> list[str]:
    """Orders and purchase orders whose two companies had no accepted connection
    (decided) before the order was made."""
    accepted = {
        frozenset((row.requester_id, row.target_id)): row.decided_at
        for row in await session.scalars(
            select(Connection).where(Connection.status == ConnectionStatus.ACCEPTED)
        )
    }
    orders = await session.scalars(select(Order))
    trades = [(o.number, o.company_id, o.lab_id, o.created_at) for o in orders]
    pos = await session.scalars(select(PurchaseOrder))
    trades += [(po.number, po.company_id, po.supplier_id, po.created_at) for po in pos]
    assert len(trades) > 10
    broken = []
    for number, buyer, seller, created_at in trades:
        decided_at = accepted.get(frozenset((buyer, seller)))
        if decided_at is None or decided_at > created_at:
            broken.append(number)
    return broken


async def test_the_demo_data_trades_only_along_accepted_connections(sqlite_url: str) -> None:
    await upgrade_database(sqlite_url)
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        await build_network(
            sessions, today=date(2026, 11, 28), password_hash="x", step=lambda _: None, days=20
        )
        samples = await ensure_samples(sessions)
        await ensure_marketplace_samples(sessions, samples)
        async with sessions() as session:
            assert await _trade_without_connection(session) == []
            request = await session.get(Connection, samples.connection)
            assert request is not None and request.status == ConnectionStatus.PENDING
    finally:
        await engine.dispose()
