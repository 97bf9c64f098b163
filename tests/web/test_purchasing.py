"""Purchase orders over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from ils.domain.companies import Company, CompanyKind, Role
from ils.domain.supply import Product, ProductCategory, PurchaseOrder
from ils.web.state import WebState
from tests.web.api_support import World, all_jobs, build_world, connect, count, errors_of, queued
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB, SUPPLIER = CompanyKind.PRACTICE, CompanyKind.LAB, CompanyKind.SUPPLIER


async def product(factory: Factory, supplier: Company, sku: str, **fields: Any) -> Product:
    row = Product(
        company_id=supplier.id,
        sku=sku,
        name=fields.pop("name", f"Item {sku}"),
        category=fields.pop("category", ProductCategory.LENS_BLANK),
        unit_price_cents=fields.pop("unit_price_cents", 1000),
        lead_time_days=fields.pop("lead_time_days", 3),
        **fields,
    )
    await factory.add(row)
    return row


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A lab (admin, staff, lab_tech), a supplier (admin, staff) with two products and
    connected to the lab, and a practice (admin)."""
    world = await build_world(
        factory,
        signed_in,
        {
            LAB: (Role.ADMIN, Role.STAFF, Role.LAB_TECH),
            SUPPLIER: (Role.ADMIN, Role.STAFF),
            PRACTICE: (Role.ADMIN,),
        },
    )
    supplier = world.companies["supplier"]
    await connect(factory, world.lab, supplier)
    world.products = [
        await product(factory, supplier, "BLANK-160", unit_price_cents=1250, lead_time_days=2),
        await product(factory, supplier, "AR-COAT", unit_price_cents=300, lead_time_days=7),
    ]
    return world


def po_body(world: World, **overrides: Any) -> dict[str, Any]:
    blank, coat = world.products
    return {
        "supplier_id": world.companies["supplier"].id,
        "lines": [
            {"product_id": coat.id, "quantity": 10},
            {"product_id": blank.id, "quantity": 4},
        ],
        **overrides,
    }


async def test_create_a_purchase_order_at_catalogue_prices(world: World, state: WebState) -> None:
    response = await world.client(LAB).post("/api/purchase-orders", json=po_body(world))

    assert response.status_code == 201, response.text
    po = response.json()
    supplier = world.companies["supplier"]
    assert re.fullmatch(r"PO-\d{4}-00001", po["number"])
    assert (po["company_id"], po["supplier_id"], po["status"], po["created_by"]) == (
        world.lab.id,
        supplier.id,
        "sent",
        world.user(LAB).id,
    )
    assert [
        (li["sku"], li["quantity"], li["unit_price_cents"], li["total_cents"]) for li in po["lines"]
    ] == [
        ("AR-COAT", 10, 300, 3000),
        ("BLANK-160", 4, 1250, 5000),
    ]
    assert po["total_cents"] == 8000
    # no date given: today plus the longest lead time (7 days)
    created = date.fromisoformat(po["created_at"][:10])
    assert date.fromisoformat(po["expected_on"]) - created in (timedelta(days=7), timedelta(days=8))
    mails = await queued(state, "email", "purchase-order")
    assert [job.data for job in mails] == [
        {"type": "purchase-order", "poId": po["id"], "supplierId": supplier.id}
    ]

    second = await world.client(LAB, Role.ADMIN).post(
        "/api/purchase-orders", json=po_body(world, expected_on="2199-01-31")
    )
    assert second.json()["number"].endswith("-00002")
    assert second.json()["expected_on"] == "2199-01-31"


async def test_purchase_order_rules(
    world: World, state: WebState, db: DbMaker, client: httpx.AsyncClient
) -> None:
    body = po_body(world)
    assert (await client.post("/api/purchase-orders", json=body)).status_code == 401
    for kind, role in ((LAB, Role.LAB_TECH), (SUPPLIER, Role.ADMIN), (PRACTICE, Role.ADMIN)):
        response = await world.client(kind, role).post("/api/purchase-orders", json=body)
        assert response.status_code == 403, (kind, role)
    assert await count(db, PurchaseOrder) == 0
    assert await all_jobs(state) == 0


async def test_bad_purchase_orders_answer_422(
    world: World, state: WebState, db: DbMaker, factory: Factory
) -> None:
    other_supplier = await factory.company(SUPPLIER)
    foreign = await product(factory, other_supplier, "FOREIGN")
    inactive = await factory.company(SUPPLIER, is_active=False)
    blank, coat = world.products
    cases: list[tuple[dict[str, Any], str]] = [
        ({"supplier_id": "0" * 32}, "supplier_id"),
        ({"supplier_id": world.lab.id}, "supplier_id"),  # a lab is not a supplier
        ({"supplier_id": inactive.id}, "supplier_id"),
        (
            {
                "lines": [
                    {"product_id": blank.id, "quantity": 1},
                    {"product_id": foreign.id, "quantity": 1},
                ]
            },
            "lines.1.product_id",
        ),
        ({"lines": [{"product_id": "0" * 32, "quantity": 1}]}, "lines.0.product_id"),
        (
            {
                "lines": [
                    {"product_id": coat.id, "quantity": 1},
                    {"product_id": coat.id, "quantity": 2},
                ]
            },
            "lines",
        ),
        ({"lines": [{"product_id": coat.id, "quantity": 0}]}, "lines.0.quantity"),
        ({"lines": []}, "lines"),
        ({"expected_on": "2000-01-01"}, "expected_on"),
    ]
    for changes, field in cases:
        response = await world.client(LAB).post(
            "/api/purchase-orders", json=po_body(world, **changes)
        )
        assert list(errors_of(response)) == [field], changes
    assert await count(db, PurchaseOrder) == 0
    assert await all_jobs(state) == 0


async def test_lab_and_supplier_read_a_purchase_order(
    world: World, factory: Factory, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    po = (await world.client(LAB).post("/api/purchase-orders", json=po_body(world))).json()
    path = f"/api/purchase-orders/{po['id']}"
    for reader in (world.client(LAB), world.client(SUPPLIER), world.client(SUPPLIER, Role.ADMIN)):
        response = await reader.get(path)
        assert response.status_code == 200
        assert response.json() == po
    assert (await client.get(path)).status_code == 401
    assert (await world.client(LAB, Role.LAB_TECH).get(path)).status_code == 403
    assert (await world.client(PRACTICE, Role.ADMIN).get(path)).status_code == 403
    for kind in (LAB, SUPPLIER):
        stranger, _ = await signed_in(Role.ADMIN, kind)
        response = await stranger.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    assert (await world.client(LAB).get(f"/api/purchase-orders/{'0' * 32}")).status_code == 404
