"""Invoices and payments over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from ils.domain.billing import Invoice, InvoiceStatus, Payment
from ils.domain.companies import CompanyKind, Role
from ils.web.state import WebState
from tests.web.api_support import (
    World,
    all_jobs,
    build_world,
    connect,
    count,
    errors_of,
    order_body,
    patient_of,
    queued,
)
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB = CompanyKind.PRACTICE, CompanyKind.LAB

LINES: list[dict[str, Any]] = [
    {"description": "Progressive lens 1.60", "quantity": 2, "unit_price_cents": 4500},
    {"description": "Dispensing", "unit_price_cents": 2000, "vat_treatment": "exempt"},
    {"description": "Hard coat", "unit_price_cents": 999, "vat_rate_bp": 2000},
]


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice (admin, staff), a lab (admin, staff, lab_tech) connected to it and a
    patient."""
    world = await build_world(
        factory,
        signed_in,
        {PRACTICE: (Role.ADMIN, Role.STAFF), LAB: (Role.ADMIN, Role.STAFF, Role.LAB_TECH)},
    )
    world.patients.append(await patient_of(factory, world.practice))
    await connect(factory, world.practice, world.lab)
    return world


async def place_order(world: World) -> str:
    body = order_body(world.patient.id, world.lab.id)
    response = await world.client(PRACTICE).post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


async def invoice_order(world: World, order_id: str, **extra: Any) -> dict[str, Any]:
    response = await world.client(LAB).post(
        f"/api/orders/{order_id}/invoices", json={"lines": LINES, **extra}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_invoice_an_order_with_totals_per_vat_rate(world: World, state: WebState) -> None:
    order_id = await place_order(world)

    invoice = await invoice_order(world, order_id)

    assert re.fullmatch(r"INV-\d{4}-00001", invoice["number"])
    assert (invoice["company_id"], invoice["customer_id"], invoice["order_id"]) == (
        world.lab.id,
        world.practice.id,
        order_id,
    )
    assert invoice["status"] == "issued"
    issued, due = date.fromisoformat(invoice["issued_on"]), date.fromisoformat(invoice["due_on"])
    assert (due - issued).days == invoice["payment_terms_days"] == 30
    assert [line["net_cents"] for line in invoice["lines"]] == [9000, 2000, 999]
    assert [line["vat_rate_bp"] for line in invoice["lines"]] == [2000, 0, 2000]
    # 20% of 9999 is 1999.8: VAT is rounded once per rate, not per line.
    assert invoice["vat_rates"] == [
        {
            "vat_treatment": "standard",
            "vat_rate_bp": 2000,
            "net_cents": 9999,
            "vat_cents": 2000,
            "gross_cents": 11999,
        },
        {
            "vat_treatment": "exempt",
            "vat_rate_bp": 0,
            "net_cents": 2000,
            "vat_cents": 0,
            "gross_cents": 2000,
        },
    ]
    assert (invoice["net_cents"], invoice["vat_cents"], invoice["gross_cents"]) == (
        11999,
        2000,
        13999,
    )
    assert (invoice["paid_cents"], invoice["balance_cents"]) == (0, 13999)
    pdfs = await queued(state, "pdf", "invoice")
    assert [job.data for job in pdfs] == [{"type": "invoice", "invoiceId": invoice["id"]}]


async def test_invoice_numbers_run_per_lab(
    world: World, factory: Factory, signed_in: SignedIn
) -> None:
    first = await invoice_order(world, await place_order(world))
    second = await invoice_order(world, await place_order(world))
    assert int(second["number"][-5:]) == int(first["number"][-5:]) + 1

    other_lab = await factory.company(LAB)
    other_client, _ = await signed_in(Role.STAFF, LAB, company=other_lab)
    await connect(factory, world.practice, other_lab)
    body = order_body(world.patient.id, other_lab.id)
    order = (await world.client(PRACTICE).post("/api/orders", json=body)).json()
    response = await other_client.post(f"/api/orders/{order['id']}/invoices", json={"lines": LINES})
    assert response.json()["number"].endswith("-00001")


async def test_invoice_rules(
    world: World,
    state: WebState,
    db: DbMaker,
    signed_in: SignedIn,
    client: httpx.AsyncClient,
) -> None:
    order_id = await place_order(world)
    path = f"/api/orders/{order_id}/invoices"
    body = {"lines": LINES}
    jobs = await all_jobs(state)
    assert (await client.post(path, json=body)).status_code == 401
    assert (await world.client(PRACTICE, Role.ADMIN).post(path, json=body)).status_code == 403
    assert (await world.client(LAB, Role.LAB_TECH).post(path, json=body)).status_code == 403
    stranger, _ = await signed_in(Role.ADMIN, LAB)
    assert (await stranger.post(path, json=body)).status_code == 404
    unknown = f"/api/orders/{'0' * 32}/invoices"
    assert (await world.client(LAB).post(unknown, json=body)).status_code == 404
    assert await count(db, Invoice) == 0
    assert await all_jobs(state) == jobs

    await invoice_order(world, order_id)
    again = await world.client(LAB, Role.ADMIN).post(path, json=body)
    assert again.status_code == 409
    assert await count(db, Invoice) == 1


async def test_cancelled_orders_are_not_invoiced(world: World) -> None:
    order_id = await place_order(world)
    cancel = await world.client(PRACTICE).post(
        f"/api/orders/{order_id}/status", json={"status": "cancelled"}
    )
    assert cancel.status_code == 200
    response = await world.client(LAB).post(
        f"/api/orders/{order_id}/invoices", json={"lines": LINES}
    )
    assert response.status_code == 409


BAD_INVOICES: list[tuple[dict[str, Any], str]] = [
    ({"lines": []}, "lines"),
    (
        {
            "lines": [
                {
                    "description": "x",
                    "unit_price_cents": 1,
                    "vat_treatment": "exempt",
                    "vat_rate_bp": 2000,
                }
            ]
        },
        "lines.0.vat_rate_bp",
    ),
    ({"lines": [{"description": "x", "unit_price_cents": -1}]}, "lines.0.unit_price_cents"),
    ({"lines": [{"description": "x", "unit_price_cents": 1, "quantity": 0}]}, "lines.0.quantity"),
    ({"lines": [{"description": "", "unit_price_cents": 1}]}, "lines.0.description"),
    (
        {"lines": [{"description": "x", "unit_price_cents": 1, "vat_rate_bp": 10001}]},
        "lines.0.vat_rate_bp",
    ),
    ({"lines": LINES, "currency": "gbp"}, "currency"),
    ({"lines": LINES, "payment_terms_days": -1}, "payment_terms_days"),
]


@pytest.mark.parametrize(("body", "field"), BAD_INVOICES)
async def test_bad_invoices_answer_422(
    world: World, state: WebState, db: DbMaker, body: dict[str, Any], field: str
) -> None:
    order_id = await place_order(world)
    jobs = await all_jobs(state)
    response = await world.client(LAB).post(f"/api/orders/{order_id}/invoices", json=body)
    assert field in errors_of(response)
    assert await count(db, Invoice) == 0
    assert await all_jobs(state) == jobs


async def test_issuer_and_customer_read_an_invoice_nobody_else(
    world: World, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    invoice = await invoice_order(world, await place_order(world))
    path = f"/api/invoices/{invoice['id']}"
    for reader in (
        world.client(LAB),
        world.client(LAB, Role.ADMIN),
        world.client(PRACTICE),
        world.client(PRACTICE, Role.ADMIN),
    ):
        response = await reader.get(path)
        assert response.status_code == 200
        assert response.json() == invoice
    assert (await world.client(LAB, Role.LAB_TECH).get(path)).status_code == 403
    for kind in (LAB, PRACTICE):
        stranger, _ = await signed_in(Role.ADMIN, kind)
        assert (await stranger.get(path)).status_code == 404
    assert (await world.client(LAB).get(f"/api/invoices/{'0' * 32}")).status_code == 404
    assert (await client.get(path)).status_code == 401


async def test_payments_move_the_balance_and_queue_receipts(world: World, state: WebState) -> None:
    invoice = await invoice_order(world, await place_order(world))
    path = f"/api/invoices/{invoice['id']}/payments"
    lab = world.client(LAB)

    first = await lab.post(path, json={"amount_cents": 5000, "method": "card", "reference": "A1"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["paid_cents"], body["balance_cents"]) == (
        "partially_paid",
        5000,
        8999,
    )
    assert [(p["amount_cents"], p["method"], p["reference"]) for p in body["payments"]] == [
        (5000, "card", "A1")
    ]

    rest = await lab.post(
        path,
        json={
            "amount_cents": 8999,
            "method": "bank_transfer",
            "received_at": "2026-03-01T10:00:00+01:00",
        },
    )
    assert rest.status_code == 201, rest.text
    body = rest.json()
    assert (body["status"], body["balance_cents"]) == ("paid", 0)
    # payments list by when the money came, not when it was recorded
    assert [p["amount_cents"] for p in body["payments"]] == [8999, 5000]
    assert body["payments"][0]["received_at"].startswith("2026-03-01T09:00:00")

    receipts = await queued(state, "pdf", "receipt")
    assert [job.data for job in receipts] == [{"type": "receipt", "invoiceId": invoice["id"]}] * 2
    assert (await lab.get(f"/api/invoices/{invoice['id']}")).json()["status"] == "paid"
    assert (await lab.post(path, json={"amount_cents": 1, "method": "cash"})).status_code == 409


async def test_payment_rules(
    world: World,
    state: WebState,
    db: DbMaker,
    signed_in: SignedIn,
    client: httpx.AsyncClient,
) -> None:
    invoice = await invoice_order(world, await place_order(world))
    path = f"/api/invoices/{invoice['id']}/payments"
    pay = {"amount_cents": 100, "method": "cash"}
    jobs = await all_jobs(state)
    assert (await client.post(path, json=pay)).status_code == 401
    assert (await world.client(PRACTICE, Role.ADMIN).post(path, json=pay)).status_code == 403
    assert (await world.client(LAB, Role.LAB_TECH).post(path, json=pay)).status_code == 403
    stranger, _ = await signed_in(Role.ADMIN, LAB)
    assert (await stranger.post(path, json=pay)).status_code == 404
    lab = world.client(LAB)
    too_much = await lab.post(path, json={"amount_cents": 14000, "method": "cash"})
    assert list(errors_of(too_much)) == ["amount_cents"]
    for bad, field in (
        ({"amount_cents": 0, "method": "cash"}, "amount_cents"),
        ({"amount_cents": 1, "method": "cheque"}, "method"),
        (
            {"amount_cents": 1, "method": "cash", "received_at": "2026-03-01T10:00:00"},
            "received_at",
        ),
    ):
        assert field in errors_of(await lab.post(path, json=bad)), bad
    assert await count(db, Payment) == 0
    assert await all_jobs(state) == jobs

    async with db() as session, session.begin():
        await session.execute(
            update(Invoice).where(Invoice.id == invoice["id"]).values(status=InvoiceStatus.VOID)
        )
    assert (await lab.post(path, json=pay)).status_code == 409
    assert await all_jobs(state) == jobs


async def test_a_free_invoice_is_settled_at_once(world: World) -> None:
    order_id = await place_order(world)
    free = [{"description": "Warranty remake", "unit_price_cents": 0}]
    response = await world.client(LAB).post(
        f"/api/orders/{order_id}/invoices", json={"lines": free}
    )
    assert response.status_code == 201, response.text
    invoice = response.json()
    assert (invoice["status"], invoice["gross_cents"], invoice["balance_cents"]) == ("paid", 0, 0)
    payment = await world.client(LAB).post(
        f"/api/invoices/{invoice['id']}/payments", json={"amount_cents": 1, "method": "cash"}
    )
    assert payment.status_code == 409
