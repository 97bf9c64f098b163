"""Marketplace connections over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ils.domain.companies import CompanyKind, Role
from ils.domain.marketplace import Connection
from ils.web.state import WebState
from tests.web.api_support import World, all_jobs, build_world, count, errors_of, queued
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB, SUPPLIER = CompanyKind.PRACTICE, CompanyKind.LAB, CompanyKind.SUPPLIER
CONNECTIONS = "/api/marketplace/connections"


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """A practice and a lab with admin, company_admin and staff each, and a supplier."""
    roles = (Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF)
    return await build_world(
        factory, signed_in, {PRACTICE: roles, LAB: roles, SUPPLIER: (Role.ADMIN,)}
    )


async def ask(world: World, **body: Any) -> dict[str, Any]:
    payload = {"target_id": world.lab.id, **body}
    response = await world.client(PRACTICE, Role.ADMIN).post(CONNECTIONS, json=payload)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def managers(world: World, kind: CompanyKind) -> set[str]:
    return {world.user(kind, role).id for role in (Role.ADMIN, Role.COMPANY_ADMIN)}


async def test_request_queues_the_email_and_notifies_the_targets_managers(
    world: World, state: WebState, factory: Factory
) -> None:
    await factory.user(world.lab, Role.ADMIN, is_active=False)

    connection = await ask(world, message="We would like to order from you.")

    assert (connection["requester_id"], connection["target_id"]) == (
        world.practice.id,
        world.lab.id,
    )
    assert connection["direction"] == "outgoing"
    assert connection["other"] == {"id": world.lab.id, "name": world.lab.name, "kind": "lab"}
    assert connection["status"] == "pending"
    assert connection["requested_by"] == world.user(PRACTICE, Role.ADMIN).id
    assert connection["message"] == "We would like to order from you."
    mails = await queued(state, "email", "marketplace-connection")
    assert [job.data for job in mails] == [
        {
            "type": "marketplace-connection",
            "connectionId": connection["id"],
            "requesterCompanyId": world.practice.id,
            "targetCompanyId": world.lab.id,
        }
    ]
    notes = await queued(state, "notification", "marketplace-notification")
    assert {job.data["userId"] for job in notes} == managers(world, LAB)
    for job in notes:
        assert job.data["action"] == "request"
        assert job.data["companyName"] == world.practice.name
        assert job.data["connectionId"] == connection["id"]


async def test_both_sides_list_the_connection(world: World) -> None:
    connection = await ask(world)
    outgoing = (await world.client(PRACTICE).get(CONNECTIONS)).json()
    incoming = (await world.client(LAB).get(CONNECTIONS)).json()
    assert [(c["id"], c["direction"], c["other"]["id"]) for c in outgoing] == [
        (connection["id"], "outgoing", world.lab.id)
    ]
    assert [(c["id"], c["direction"], c["other"]["id"]) for c in incoming] == [
        (connection["id"], "incoming", world.practice.id)
    ]
    assert (await world.client(SUPPLIER, Role.ADMIN).get(CONNECTIONS)).json() == []
    accepted = await world.client(LAB).get(CONNECTIONS, params={"status": "accepted"})
    assert accepted.json() == []


async def test_accept_tells_the_requesters_managers(world: World, state: WebState) -> None:
    connection = await ask(world)
    before = len(await queued(state, "notification"))

    response = await world.client(LAB, Role.COMPANY_ADMIN).post(
        f"{CONNECTIONS}/{connection['id']}/accept"
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["direction"], body["decided_by"]) == (
        "accepted",
        "incoming",
        world.user(LAB, Role.COMPANY_ADMIN).id,
    )
    assert body["decided_at"]
    notes = (await queued(state, "notification"))[before:]
    assert {job.data["userId"] for job in notes} == managers(world, PRACTICE)
    assert {(job.data["action"], job.data["companyName"]) for job in notes} == {
        ("accepted", world.lab.name)
    }
    again = await world.client(LAB, Role.ADMIN).post(f"{CONNECTIONS}/{connection['id']}/accept")
    assert again.status_code == 409


async def test_reject_and_ask_again(world: World, state: WebState, db: DbMaker) -> None:
    connection = await ask(world)
    response = await world.client(LAB, Role.ADMIN).post(f"{CONNECTIONS}/{connection['id']}/reject")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    notes = await queued(state, "notification", "marketplace-notification")
    assert {job.data["userId"] for job in notes if job.data["action"] == "rejected"} == managers(
        world, PRACTICE
    )

    reopened = await ask(world, message="Second try")
    assert (reopened["id"], reopened["status"], reopened["decided_by"]) == (
        connection["id"],
        "pending",
        None,
    )
    assert await count(db, Connection) == 1
    assert len(await queued(state, "email", "marketplace-connection")) == 2


async def test_one_live_link_per_pair(world: World, state: WebState, db: DbMaker) -> None:
    await ask(world)
    jobs = await all_jobs(state)
    twice = await world.client(PRACTICE, Role.COMPANY_ADMIN).post(
        CONNECTIONS, json={"target_id": world.lab.id}
    )
    assert twice.status_code == 409
    reverse = await world.client(LAB, Role.ADMIN).post(
        CONNECTIONS, json={"target_id": world.practice.id}
    )
    assert reverse.status_code == 409
    assert await count(db, Connection) == 1
    assert await all_jobs(state) == jobs


async def test_request_rules(
    world: World, state: WebState, db: DbMaker, factory: Factory, client: httpx.AsyncClient
) -> None:
    inactive = await factory.company(LAB, is_active=False)
    body = {"target_id": world.lab.id}
    assert (await client.post(CONNECTIONS, json=body)).status_code == 401
    assert (await client.get(CONNECTIONS)).status_code == 401
    assert (await world.client(PRACTICE).post(CONNECTIONS, json=body)).status_code == 403
    admin = world.client(PRACTICE, Role.ADMIN)
    for target in ("0" * 32, world.practice.id, inactive.id):
        response = await admin.post(CONNECTIONS, json={"target_id": target})
        assert list(errors_of(response)) == ["target_id"], target
    too_long = await admin.post(CONNECTIONS, json={**body, "message": "x" * 2001})
    assert list(errors_of(too_long)) == ["message"]
    assert await count(db, Connection) == 0
    assert await all_jobs(state) == 0


async def test_decision_rules(
    world: World, state: WebState, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    connection = await ask(world)
    accept = f"{CONNECTIONS}/{connection['id']}/accept"
    reject = f"{CONNECTIONS}/{connection['id']}/reject"
    jobs = await all_jobs(state)
    assert (await client.post(accept)).status_code == 401
    assert (await world.client(LAB).post(accept)).status_code == 403  # staff
    assert (await world.client(PRACTICE, Role.ADMIN).post(accept)).status_code == 403  # requester
    stranger, _ = await signed_in(Role.ADMIN, LAB)
    for path in (accept, reject):
        response = await stranger.post(path)
        assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    unknown = await world.client(LAB, Role.ADMIN).post(f"{CONNECTIONS}/{'0' * 32}/reject")
    assert unknown.status_code == 404
    maybe = await world.client(LAB, Role.ADMIN).post(f"{CONNECTIONS}/{connection['id']}/maybe")
    assert list(errors_of(maybe)) == ["decision"]
    assert await all_jobs(state) == jobs
    assert (await world.client(LAB, Role.ADMIN).get(CONNECTIONS)).json()[0]["status"] == "pending"
