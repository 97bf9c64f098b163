"""Bounded and literal input (issue 23), on SQLite and PostgreSQL.

Every paging and date query parameter has bounds, so a value past what the database or
``datetime`` holds is a 422 naming the parameter, never a 500 (SQLite's OFFSET
overflowed at 2**63, ``created_to=9999-12-31`` overflowed the day after it). Bodies are
taken literally: ``true`` is no price, ``0`` no date of birth, and one-line texts refuse
every control character, the C1 ones and the Unicode line separators included.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ils.domain.clinical import Patient
from ils.domain.companies import CompanyKind, Role
from ils.domain.orders import Order
from ils.web.schemas.common import MAX_OFFSET
from tests.web.api_support import World, body_for, count, errors_of, order_world
from tests.web.conftest import DbMaker, Factory, SignedIn

PRACTICE, LAB = CompanyKind.PRACTICE, CompanyKind.LAB
HUGE = 2**63

#: Every paged list, by who may read it.
PRACTICE_LISTS = (
    "/api/orders",
    "/api/patients",
    "/api/notifications",
    "/api/ai/results",
    "/api/ai/conversations",
    "/api/mail",
)
MANAGER_LISTS = ("/api/queue/audit", "/api/queue/email/jobs", "/api/queue/pdf/jobs?state=failed")


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    """See :func:`order_world`."""
    return await order_world(factory, signed_in)


def _with(url: str, **params: Any) -> str:
    joined = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{joined}"


async def test_paging_past_its_bounds_answers_422_on_every_list(world: World) -> None:
    reader = world.client(PRACTICE, Role.ADMIN)
    for url in PRACTICE_LISTS + MANAGER_LISTS:
        for offset in (HUGE, MAX_OFFSET + 1, -1):
            response = await reader.get(_with(url, offset=offset))
            assert list(errors_of(response)) == ["offset"], (url, offset)
        for limit in (HUGE, 0):
            response = await reader.get(_with(url, limit=limit))
            assert list(errors_of(response)) == ["limit"], (url, limit)
        last = await reader.get(_with(url, offset=MAX_OFFSET))
        assert last.status_code == 200, (url, last.text)
        assert last.json()["items"] == []


async def test_the_dashboards_paging_is_bounded_too(world: World) -> None:
    page = await world.client(PRACTICE, Role.ADMIN).get(
        _with("/admin/queues/email?state=waiting", offset=HUGE)
    )
    # The dashboard answers a bad query with its own page (400), naming the field.
    assert page.status_code == 400
    assert "offset" in page.text


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1899-12-31", "2201-01-01"])
async def test_order_dates_outside_the_years_answer_422(world: World, day: str) -> None:
    staff = world.client(PRACTICE)
    for name in ("created_from", "created_to"):
        response = await staff.get("/api/orders", params={name: day})
        assert list(errors_of(response)) == [name], (name, day)


@pytest.mark.parametrize("day", ["0", "1700000000", "20300115"])
async def test_a_number_is_no_date_in_a_query(world: World, day: str) -> None:
    response = await world.client(PRACTICE).get("/api/orders", params={"created_to": day})
    assert list(errors_of(response)) == ["created_to"]


async def test_order_dates_within_the_years_list(world: World) -> None:
    response = await world.client(PRACTICE).get(
        "/api/orders", params={"created_from": "1900-01-01", "created_to": "2200-12-31"}
    )
    assert response.status_code == 200, response.text


# -- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["start", "end"])
async def test_a_schedule_moment_outside_the_years_answers_422(world: World, field: str) -> None:
    """An interval starting in 9999 overflowed computing its next run (a 500 once)."""
    admin = world.client(LAB, Role.ADMIN)
    for moment in ("9999-12-31T23:00:00Z", "1899-12-31T23:00:00Z", 0):
        body = {"every_s": 3600, field: moment}
        response = await admin.post("/api/schedules/preview", json=body)
        assert list(errors_of(response)) == [field], moment
    fine = await admin.post(
        "/api/schedules/preview", json={"every_s": 3600, field: "2200-12-31T23:00:00Z"}
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_cents": True}, "price_cents"),
        ({"price_cents": False}, "price_cents"),
        ({"right": {"sphere": -1, "cylinder": -0.5, "axis": True}}, "right.axis"),
        ({"due_date": 0}, "due_date"),
        ({"due_date": "1893456000"}, "due_date"),
        ({"due_date": "9999-12-31"}, "due_date"),
    ],
)
async def test_an_order_body_is_taken_literally(
    world: World, db: DbMaker, changes: dict[str, Any], field: str
) -> None:
    response = await world.client(PRACTICE).post("/api/orders", json=body_for(world, **changes))
    assert list(errors_of(response)) == [field]
    assert await count(db, Order) == 0


async def test_a_date_of_birth_is_a_written_date(world: World, db: DbMaker) -> None:
    staff = world.client(PRACTICE)
    before = await count(db, Patient)
    for born in (0, "0", 86_400, True):
        response = await staff.post(
            "/api/patients", json={"first_name": "Ada", "last_name": "Byron", "date_of_birth": born}
        )
        assert list(errors_of(response)) == ["date_of_birth"], born
    assert await count(db, Patient) == before
    fine = await staff.post(
        "/api/patients",
        json={"first_name": "Ada", "last_name": "Byron", "date_of_birth": "1970-01-01"},
    )
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize(
    "name",
    [
        "Ada\u0085Byron",  # C1 "next line"
        "Ada\u0080",  # C1, first
        "Ada\u009fB",  # C1, last
        "Ada\u2028Byron",  # line separator
        "Ada\u2029Byron",  # paragraph separator
        "Ada\x07Byron",  # C0 (bell), as before
    ],
)
async def test_one_line_texts_refuse_every_control_character(
    world: World, db: DbMaker, name: str
) -> None:
    before = await count(db, Patient)
    response = await world.client(PRACTICE).post(
        "/api/patients", json={"first_name": name, "last_name": "Byron"}
    )
    assert errors_of(response) == {"first_name": "must be a single line without control characters"}
    assert await count(db, Patient) == before


async def test_one_line_texts_keep_other_unicode(world: World) -> None:
    response = await world.client(PRACTICE).post(
        "/api/patients", json={"first_name": "Zoë-Åsa", "last_name": "O'Brien 李"}
    )
    assert response.status_code == 201, response.text


async def test_notes_refuse_c1_controls_but_keep_line_breaks(world: World) -> None:
    staff = world.client(PRACTICE)
    refused = await staff.post("/api/orders", json=body_for(world, notes="Rush\u0085please"))
    assert list(errors_of(refused)) == ["notes"]
    kept = await staff.post("/api/orders", json=body_for(world, notes="Rush.\r\n\tThanks."))
    assert kept.status_code == 201, kept.text


async def test_a_purchase_order_quantity_is_no_boolean(
    factory: Factory, signed_in: SignedIn, client: httpx.AsyncClient
) -> None:
    """Nested bodies (a line of a purchase order) follow the same rule."""
    lab = await factory.company(LAB)
    staff, _ = await signed_in(Role.STAFF, LAB, company=lab)
    body = {"supplier_id": "0" * 32, "lines": [{"product_id": "0" * 32, "quantity": True}]}
    response = await staff.post("/api/purchase-orders", json=body)
    assert list(errors_of(response)) == ["lines.0.quantity"]
