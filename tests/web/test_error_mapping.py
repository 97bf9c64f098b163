"""Each domain error a service raises leaves the API as the HTTP error it replaced.

Services used to raise ``HTTPException`` (403, 404, 409, 429) and FastAPI's
``RequestValidationError`` (422 on a body or query field). They now raise
:mod:`ils.errors` classes and ``ils.web.errors`` maps them once; clients must not see
any difference. So every error is raised from a route of a bare app with the API's
handlers and compared with what the old exception gave on the same app: status,
JSON body and content type alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import sqlalchemy
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from sqlalchemy.pool import QueuePool

from ils.domain.orders import InvalidTransitionError, OrderStatus, Side
from ils.errors import (
    ConflictError,
    ForbiddenError,
    ILSError,
    InvalidFieldError,
    NotFoundError,
    RateLimitedError,
)
from ils.web.deps import NOT_ALLOWED, not_found
from ils.web.errors import SERVER_BUSY, install_error_handlers, status_for
from ils.web.services.common import field_error, query_error

BASE_URL = "http://test"


def _old_field_error(field: str, message: str, source: str = "body") -> RequestValidationError:
    """How ``field_error`` / ``query_error`` built their 422 before this change."""
    loc: list[str | int] = [source]
    for part in field.split(".") if source == "body" else [field]:
        loc.append(int(part) if part.isdigit() else part)
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message}])


#: (name, what services raise now, what they raised before, status).
CASES: list[tuple[str, Callable[[], Exception], Callable[[], Exception], int]] = [
    ("not-found", lambda: NotFoundError("Order"), not_found, 404),
    ("forbidden", ForbiddenError, lambda: HTTPException(403, NOT_ALLOWED), 403),
    (
        "conflict",
        lambda: ConflictError("the invoice is paid"),
        lambda: HTTPException(409, "the invoice is paid"),
        409,
    ),
    (
        "transition",
        lambda: InvalidTransitionError(OrderStatus.SHIPPED, OrderStatus.SUBMITTED, Side.LAB),
        lambda: HTTPException(
            409,
            str(InvalidTransitionError(OrderStatus.SHIPPED, OrderStatus.SUBMITTED, Side.LAB)),
        ),
        409,
    ),
    (
        "rate-limited",
        lambda: RateLimitedError("too many questions in the last minute; wait for the answers"),
        lambda: HTTPException(429, "too many questions in the last minute; wait for the answers"),
        429,
    ),
    (
        "body-field",
        lambda: field_error("lines.0.product_id", "must be a product of the supplier"),
        lambda: _old_field_error("lines.0.product_id", "must be a product of the supplier"),
        422,
    ),
    (
        "query-field",
        lambda: query_error("created_to", "must not be before created_from"),
        lambda: _old_field_error("created_to", "must not be before created_from", "query"),
        422,
    ),
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A bare app with the API's error handlers; ``/new/{name}`` raises the domain
    error, ``/old/{name}`` the HTTP exception it replaced."""
    app = FastAPI()
    install_error_handlers(app)
    by_name = {name: (new, old) for name, new, old, _ in CASES}

    @app.get("/new/{name}")
    async def raise_new(name: str) -> None:
        raise by_name[name][0]()

    @app.get("/old/{name}")
    async def raise_old(name: str) -> None:
        raise by_name[name][1]()

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@pytest.mark.parametrize(("name", "status"), [(c[0], c[3]) for c in CASES])
async def test_domain_error_answers_as_the_http_error_it_replaced(
    client: httpx.AsyncClient, name: str, status: int
) -> None:
    new = await client.get(f"/new/{name}")
    old = await client.get(f"/old/{name}")
    assert new.status_code == old.status_code == status
    assert new.json() == old.json()
    assert new.headers["content-type"] == old.headers["content-type"]


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (NotFoundError(), 404, {"detail": "not found"}),
        (NotFoundError("Invoice"), 404, {"detail": "not found"}),
        (ForbiddenError(), 403, {"detail": "not allowed for your role"}),
        (
            ConflictError("the order is already invoiced"),
            409,
            {"detail": "the order is already invoiced"},
        ),
        (RateLimitedError("slow down"), 429, {"detail": "slow down"}),
        (
            InvalidFieldError("due_date", "must not be in the past"),
            422,
            {"detail": [{"field": "due_date", "message": "must not be in the past"}]},
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ILSError) else None,
)
async def test_each_new_error_maps_to_its_status_and_body(
    error: ILSError, status: int, body: dict[str, object]
) -> None:
    assert status_for(error) == status
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    async def raise_it() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        response = await http.get("/raise")
    assert response.status_code == status
    assert response.json() == body


def test_not_found_never_names_the_record() -> None:
    """The 404 must not tell a missing record from another company's one; the record
    kind is for the code only."""
    error = NotFoundError("Patient")
    assert str(error) == "not found"
    assert error.what == "Patient"


async def test_a_request_that_finds_every_database_connection_busy_gets_503_and_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real pool of one connection, held, with a short timeout: the route's checkout
    raises the pool's own ``TimeoutError``. Before, that answered 500 "internal error"
    and logged a stack trace per request (bench/users.py --deployment full, saturated)."""
    engine = sqlalchemy.create_engine(
        "sqlite://", poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/orders")
    async def orders() -> None:
        with engine.connect():
            pass

    transport = httpx.ASGITransport(app=app)
    held = engine.connect()
    try:
        caplog.set_level(logging.WARNING)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            busy = await http.get("/orders")
        held.close()
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            free = await http.get("/orders")
    finally:
        held.close()
        engine.dispose()
    assert busy.status_code == 503
    assert busy.json() == {"detail": SERVER_BUSY}
    assert busy.headers["retry-after"] == "1"
    assert free.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "ils.web.errors"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "GET /orders answered 503" in record.getMessage()
