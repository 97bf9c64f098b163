"""Order status changes and shipping over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ils.domain.companies import CompanyKind, Role
from ils.domain.orders import OrderStatusChange
from ils.web.state import WebState
from tests.web.api_support import (
    World,
    all_jobs,
    count,
    errors_of,
    move,
    order_world,
    place,
    queued,
)
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB, SUPPLIER = CompanyKind.PRACTICE, CompanyKind.LAB, CompanyKind.SUPPLIER


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """See :func:`order_world`."""
    return await order_world(factory, signed_in)


# -- status --------------------------------------------------------------------------


async def test_lab_moves_an_order_and_the_practice_hears_of_it(
    world: World, state: WebState, db: DbMaker
) -> None:
    order = await place(world)
    before = len(await queued(state, "notification"))

    response = await world.client(LAB).post(
        f"/api/orders/{order['id']}/status", json={"status": "accepted", "note": "on it"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert body["status_history"][-1]["from_status"] == "submitted"
    assert body["status_history"][-1]["note"] == "on it"
    assert body["status_history"][-1]["changed_by"] == world.user(LAB).id
    assert set(body["next_statuses"]) == {"in_production", "cancelled", "on_hold"}
    # One job for the practice; its worker notifies each of its active users.
    (note,) = (await queued(state, "notification"))[before:]
    assert (note.name, note.data["companyId"]) == ("company-order-notification", world.practice.id)
    assert note.data["status"] == "accepted"
    assert "accepted" in note.data["message"]
    assert await count(db, OrderStatusChange) == 2


async def test_practice_cancels_its_submitted_order_and_the_lab_hears_of_it(
    world: World, state: WebState
) -> None:
    order = await place(world)
    before = len(await queued(state, "notification"))
    response = await world.client(PRACTICE).post(
        f"/api/orders/{order['id']}/status", json={"status": "cancelled"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["next_statuses"] == []
    (note,) = (await queued(state, "notification"))[before:]
    assert (note.name, note.data["companyId"]) == ("company-order-notification", world.lab.id)
    assert note.data["status"] == "cancelled"


async def test_moves_the_lifecycle_forbids_answer_409_and_queue_nothing(
    world: World, state: WebState
) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/status"
    jobs = await all_jobs(state)
    cases = [
        (PRACTICE, "accepted"),  # labs accept
        (LAB, "in_production"),  # not accepted yet
        (LAB, "shipped"),  # only through /ship
        (LAB, "submitted"),
    ]
    for kind, status in cases:
        response = await world.client(kind).post(path, json={"status": status})
        assert response.status_code == 409, (kind, status, response.text)
    await move(world, order["id"], "accepted")
    jobs = await all_jobs(state)
    response = await world.client(PRACTICE).post(path, json={"status": "cancelled"})
    assert response.status_code == 409  # once accepted, only the lab cancels
    assert await all_jobs(state) == jobs


async def test_on_hold_goes_back_where_it_came_from(world: World) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/status"
    for status in ("accepted", "in_production", "on_hold"):
        await move(world, order["id"], status)
    tech = world.client(LAB, Role.LAB_TECH)
    view = (await tech.get(f"/api/orders/{order['id']}")).json()
    assert view["held_from_status"] == "in_production"
    assert view["next_statuses"] == ["in_production"]
    assert (await tech.post(path, json={"status": "quality_check"})).status_code == 409
    response = await tech.post(path, json={"status": "in_production"})
    assert response.status_code == 200
    assert response.json()["held_from_status"] is None


async def test_status_roles(world: World, signed_in: SignedIn, client: httpx.AsyncClient) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/status"
    tech = world.client(LAB, Role.LAB_TECH)
    # lab_tech makes production moves, not commercial ones
    assert (await tech.post(path, json={"status": "accepted"})).status_code == 403
    await move(world, order["id"], "accepted")
    assert (await tech.post(path, json={"status": "cancelled"})).status_code == 403
    assert (await tech.post(path, json={"status": "in_production"})).status_code == 200
    # a lab_tech of a practice is no ordering role
    practice_tech = world.client(PRACTICE, Role.LAB_TECH)
    assert (await practice_tech.post(path, json={"status": "cancelled"})).status_code == 403
    assert (await world.client(SUPPLIER).post(path, json={"status": "on_hold"})).status_code == 403
    stranger, _ = await signed_in(Role.ADMIN, LAB)
    assert (await stranger.post(path, json={"status": "on_hold"})).status_code == 404
    assert (await client.post(path, json={"status": "on_hold"})).status_code == 401
    bad = await world.client(LAB).post(path, json={"status": "lost"})
    assert list(errors_of(bad)) == ["status"]


# -- ship ----------------------------------------------------------------------------


async def _checked(world: World) -> dict[str, Any]:
    order = await place(world)
    for status in ("accepted", "in_production", "quality_check"):
        await move(world, order["id"], status)
    return order


async def test_ship_records_tracking_and_tells_the_practice(world: World, state: WebState) -> None:
    order = await _checked(world)
    notes_before = len(await queued(state, "notification"))

    response = await world.client(LAB, Role.LAB_TECH).post(
        f"/api/orders/{order['id']}/ship",
        json={"tracking_number": "RM123456789GB", "carrier": "Royal Mail"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["tracking_number"], body["carrier"]) == (
        "shipped",
        "RM123456789GB",
        "Royal Mail",
    )
    assert body["next_statuses"] == []  # lab_tech ships; delivery is the lab office's
    mails = await queued(state, "email", "order-shipment")
    assert [job.data for job in mails] == [
        {
            "type": "order-shipment",
            "orderId": order["id"],
            "userId": world.user(PRACTICE).id,
            "trackingNumber": "RM123456789GB",
            "carrier": "Royal Mail",
        }
    ]
    # One job for the practice, whatever its number of users.
    (note,) = (await queued(state, "notification"))[notes_before:]
    assert (note.data["companyId"], note.data["status"]) == (world.practice.id, "shipped")
    assert "RM123456789GB" in note.data["message"]


async def test_ship_rules(
    world: World, state: WebState, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/ship"
    ship = {"tracking_number": "TRK1"}
    jobs = await all_jobs(state)
    assert (await world.client(LAB, Role.ADMIN).post(path, json=ship)).status_code == 409
    await move(world, order["id"], "accepted")
    await move(world, order["id"], "in_production")
    await move(world, order["id"], "quality_check")
    jobs = await all_jobs(state)
    assert (await world.client(LAB, Role.STAFF).post(path, json=ship)).status_code == 403
    assert (await world.client(PRACTICE, Role.ADMIN).post(path, json=ship)).status_code == 403
    stranger, _ = await signed_in(Role.LAB_TECH, LAB)
    assert (await stranger.post(path, json=ship)).status_code == 404
    assert (await client.post(path, json=ship)).status_code == 401
    tech = world.client(LAB, Role.LAB_TECH)
    assert list(errors_of(await tech.post(path, json={}))) == ["tracking_number"]
    assert "tracking_number" in errors_of(await tech.post(path, json={"tracking_number": "a\nb"}))
    assert await all_jobs(state) == jobs
    assert (await tech.post(path, json=ship)).status_code == 200
    assert (await tech.post(path, json=ship)).status_code == 409
