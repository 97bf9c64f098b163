"""The request transaction, role checks, company scoping, error shapes, the secret key
and in-process workers, through small routes mounted for the test."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.orders import InvalidTransitionError, OrderStatus, Side
from ils.errors import InvalidPayloadError, JobNotFoundError, StoreUnavailableError
from ils.settings import Settings, resolve_secret_key
from ils.testing import eventually
from ils.web.app import create_app
from ils.web.deps import (
    CurrentUser,
    ManagerUser,
    SessionDep,
    SystemDep,
    require_roles,
    scoped_get,
)
from ils.web.state import WebState
from tests.support.handlers import register as register_recording_handler
from tests.web.conftest import (
    BASE_URL,
    PASSWORD,
    DbMaker,
    Factory,
    SignedIn,
    TestClock,
    cheap_hasher,
    sign_in,
)

SECRET = "jane.doe.patient@example.com"
PracticeStaff = Annotated[
    User, Depends(require_roles(Role.ADMIN, Role.STAFF, kinds=[CompanyKind.PRACTICE]))
]


@pytest.fixture
def routes(app: FastAPI) -> FastAPI:
    """Test-only routes on the running app, written the way routers will be."""

    @app.post("/api/test/companies", status_code=201)
    async def create_company(
        body: dict[str, str], user: CurrentUser, session: SessionDep, system: SystemDep
    ) -> dict[str, str]:
        company = Company(kind=CompanyKind.LAB, name=body["name"])
        session.add(company)
        await session.flush()
        await system.helpers.queue_order_sheet_pdf(company.id, session=session)
        if body.get("fail") == "http":
            raise HTTPException(409, "conflict")
        if body.get("fail") == "bug":
            raise RuntimeError("a bug")
        return {"id": company.id}

    @app.post("/api/test/duplicate-user")
    async def duplicate_user(user: CurrentUser, session: SessionDep) -> dict[str, str]:
        # Same e-mail as the signed-in user: the unique constraint fails at commit.
        session.add(
            User(
                company_id=user.company_id,
                email=user.email,
                name="Copy",
                password_hash="x",
                role=Role.STAFF,
            )
        )
        return {}

    @app.get("/api/test/practice-staff")
    async def practice_staff(user: PracticeStaff) -> dict[str, str]:
        return {"id": user.id}

    @app.get("/api/test/managers")
    async def managers(user: ManagerUser) -> dict[str, str]:
        return {"id": user.id}

    @app.get("/api/test/users/{user_id}")
    async def get_user(user_id: str, me: CurrentUser, session: SessionDep) -> dict[str, str]:
        found = await scoped_get(session, User, user_id, me.company_id)
        return {"email": found.email}

    @app.get("/api/test/leaky/{kind}")
    async def leaky(kind: str) -> Strict:
        if kind == "response":
            return {"name": SECRET}  # type: ignore[return-value]  # fails the response model
        try:
            Strict.model_validate({"name": SECRET})
        except ValidationError as exc:
            raise RuntimeError("could not build the order") from exc
        raise AssertionError("unreachable")

    @app.get("/api/test/errors/{kind}")
    async def errors(kind: str) -> None:
        if kind == "transition":
            raise InvalidTransitionError(OrderStatus.DELIVERED, OrderStatus.SUBMITTED, Side.LAB)
        if kind == "payload":
            raise InvalidPayloadError("pdf", "invoice", ["invoice_id: Field required"])
        if kind == "job":
            raise JobNotFoundError("pdf", "42")
        raise StoreUnavailableError("redis down")

    return app


class Strict(BaseModel):
    """A model no request can satisfy: ``name`` must be an int."""

    name: int


async def counts(state: WebState) -> tuple[int, int, int]:
    """Labs in the database, waiting pdf jobs, unrelayed outbox rows."""
    await state.system.producer.outbox.drain_tasks()
    async with state.sessions() as session:
        labs = await session.scalar(
            select(func.count()).select_from(Company).where(Company.kind == CompanyKind.LAB)
        )
    waiting = (await state.system.monitor.counts("pdf"))["waiting"]
    return int(labs or 0), waiting, await state.system.producer.outbox.pending()


async def test_a_request_that_returns_commits_its_rows_and_jobs(
    routes: FastAPI, state: WebState, signed_in: SignedIn
) -> None:
    client, _ = await signed_in(Role.ADMIN)

    response = await client.post("/api/test/companies", json={"name": "Lab"})

    assert response.status_code == 201, response.text
    assert await counts(state) == (1, 1, 0)


async def test_a_request_that_fails_writes_and_queues_nothing(
    routes: FastAPI, state: WebState, signed_in: SignedIn, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await signed_in(Role.ADMIN)

    refused = await client.post("/api/test/companies", json={"name": "Lab", "fail": "http"})
    with caplog.at_level(logging.ERROR, logger="ils.web"):
        crashed = await client.post(
            f"/api/test/companies?email={SECRET}", json={"name": SECRET, "fail": "bug"}
        )

    assert (refused.status_code, refused.json()) == (409, {"detail": "conflict"})
    assert (crashed.status_code, crashed.json()) == (500, {"detail": "internal error"})
    assert await counts(state) == (0, 0, 0)
    assert "RuntimeError: a bug" in caplog.text
    assert "POST /api/test/companies" in caplog.text
    assert SECRET not in caplog.text


async def test_a_failing_commit_is_a_500_with_no_values_in_the_log(
    routes: FastAPI, signed_in: SignedIn, caplog: pytest.LogCaptureFixture
) -> None:
    client, user = await signed_in(Role.ADMIN)

    with caplog.at_level(logging.ERROR, logger="ils.web"):
        response = await client.post("/api/test/duplicate-user")

    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
    assert "IntegrityError" in caplog.text
    assert user.email not in caplog.text
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_reads_do_not_wait_for_a_writer(
    signed_in: SignedIn, factory: Factory, db: DbMaker
) -> None:
    client, _ = await signed_in(Role.STAFF)
    async with db() as writer, writer.begin():
        # An open write transaction: on SQLite it holds the write lock.
        writer.add(Company(kind=CompanyKind.SUPPLIER, name="Pending"))
        await writer.flush()
        response = await asyncio.wait_for(client.get("/api/auth/me"), timeout=5)
        assert response.status_code == 200


async def test_state_changing_routes_need_the_csrf_header(
    routes: FastAPI, signed_in: SignedIn
) -> None:
    client, _ = await signed_in(Role.ADMIN)
    client.headers.pop("X-CSRF-Token")

    response = await client.post("/api/test/companies", json={"name": "Lab"})

    assert (response.status_code, response.json()) == (
        403,
        {"detail": "CSRF token missing or wrong"},
    )


async def test_require_roles_checks_role_and_company_kind(
    routes: FastAPI, client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    staff, _ = await signed_in(Role.STAFF, CompanyKind.PRACTICE)
    tech, _ = await signed_in(Role.LAB_TECH, CompanyKind.PRACTICE)
    lab_admin, _ = await signed_in(Role.ADMIN, CompanyKind.LAB)
    platform, _ = await signed_in(Role.PLATFORM_ADMIN, CompanyKind.PRACTICE)

    assert (await staff.get("/api/test/practice-staff")).status_code == 200
    assert (await platform.get("/api/test/practice-staff")).status_code == 200
    denied = await tech.get("/api/test/practice-staff")
    assert (denied.status_code, denied.json()) == (403, {"detail": "not allowed for your role"})
    assert (await lab_admin.get("/api/test/practice-staff")).status_code == 403
    assert (await client.get("/api/test/practice-staff")).status_code == 401
    assert (await lab_admin.get("/api/test/managers")).status_code == 200
    assert (await staff.get("/api/test/managers")).status_code == 403


async def test_scoped_get_answers_404_for_other_companies(
    routes: FastAPI, factory: Factory, signed_in: SignedIn, db: DbMaker
) -> None:
    client, me = await signed_in(Role.STAFF)
    colleague = await factory.user(await db_company(db, me.company_id))
    stranger = await factory.user(await factory.company())

    assert (await client.get(f"/api/test/users/{colleague.id}")).json() == {
        "email": colleague.email
    }
    for other in (stranger.id, "0" * 32):
        response = await client.get(f"/api/test/users/{other}")
        assert (response.status_code, response.json()) == (404, {"detail": "not found"})
    async with db() as session:
        with pytest.raises(ValueError, match="no column 'lab_id'"):
            await scoped_get(session, User, me.id, me.company_id, owners=("lab_id",))


async def db_company(db: DbMaker, company_id: str) -> Company:
    async with db() as session:
        company = await session.get(Company, company_id)
    assert company is not None
    return company


async def test_our_errors_map_to_status_codes(routes: FastAPI, client: httpx.AsyncClient) -> None:
    payload = await client.get("/api/test/errors/payload")
    job = await client.get("/api/test/errors/job")
    store = await client.get("/api/test/errors/store")
    transition = await client.get("/api/test/errors/transition")

    assert (payload.status_code, payload.json()) == (
        422,
        {"detail": [{"field": "invoice_id", "message": "Field required"}]},
    )
    assert (job.status_code, job.json()) == (404, {"detail": "job '42' not found in queue 'pdf'"})
    assert (store.status_code, store.json()) == (503, {"detail": "redis down"})
    assert transition.status_code == 409


@pytest.mark.parametrize("kind", ["response", "wrapped"])
async def test_validation_errors_inside_handlers_log_no_values(
    routes: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="ils.web"):
        response = await client.get(f"/api/test/leaky/{kind}")

    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
    assert "name: int_parsing" in caplog.text
    assert SECRET not in caplog.text


async def test_openapi_lists_the_auth_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/api/auth/sign-in", "/api/auth/sign-out", "/api/auth/me"} <= set(schema["paths"])
    assert schema["paths"]["/api/auth/me"]["get"]["tags"] == ["auth"]


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "var")

    first = resolve_secret_key(settings)
    second = resolve_secret_key(settings)

    assert first == second
    assert len(first) >= 64
    path = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]
    given = "from-the-environment-0123456789abcdef"
    configured = settings.model_copy(update={"secret_key": given})
    assert resolve_secret_key(configured) == given


async def test_in_process_workers_run_jobs_and_stop_with_the_app(
    settings: Settings, clock: TestClock
) -> None:
    app = create_app(
        settings,
        start_workers=True,
        clock=clock,
        password_hasher=cheap_hasher(),
        registrars=[register_recording_handler],
    )
    async with app.router.lifespan_context(app):
        state: WebState = app.state.ils
        factory = Factory(state)
        user = await factory.user(await factory.company(), Role.ADMIN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            await sign_in(client, user.email, PASSWORD)

            @app.post("/api/test/job")
            async def queue_one(user: CurrentUser, session: SessionDep, system: SystemDep) -> None:
                await system.helpers.queue_order_sheet_pdf(user.company_id, session=session)

            assert (await client.post("/api/test/job")).status_code == 200
        counts: dict[str, int] = {}

        async def ran() -> bool:
            counts.update(await state.system.monitor.counts("pdf"))
            return counts["completed"] == 1

        await eventually(ran, 10.0, interval=0.05, message=lambda: f"job not run in 10 s: {counts}")
    assert app.state.ils is None
