"""Sign-in, sessions, CSRF and the API's error shapes, in-process and over real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import func, select

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.domain.companies import Company, CompanyKind, Role, User, UserSession
from ils.settings import Settings, default_database_url
from ils.web.app import create_app
from ils.web.security import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tests.conftest import free_port
from tests.support.serving import until_serving
from tests.web.conftest import (
    BASE_URL,
    PASSWORD,
    ClientMaker,
    DbMaker,
    Factory,
    TestClock,
    cheap_hasher,
    sign_in,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_SIGNED_IN = {"detail": "not signed in"}
WRONG = {"detail": "wrong e-mail or password"}


def set_cookies(response: httpx.Response) -> SimpleCookie:
    """Every ``Set-Cookie`` of a response, parsed."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def me_with_cookie(client: httpx.AsyncClient, cookie_value: str) -> httpx.Response:
    """``GET /api/auth/me`` with exactly this session cookie (no jar involved)."""
    cookie = f"{SESSION_COOKIE}={cookie_value}".encode()
    return await client.get("/api/auth/me", headers={b"Cookie": cookie})


async def test_sign_in_sets_the_session_and_csrf_cookies(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    company = await factory.company(CompanyKind.LAB, name="Lens Lab")
    user = await factory.user(company, Role.LAB_TECH, email="Tech@Example.com")

    response = await client.post(
        "/api/auth/sign-in", json={"email": "TECH@example.com", "password": PASSWORD}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == {
        "id": user.id,
        "company_id": company.id,
        "email": "tech@example.com",
        "name": "Test User",
        "role": "lab_tech",
    }
    assert body["company"]["id"] == company.id
    assert body["company"]["kind"] == "lab"
    cookies = set_cookies(response)
    session = cookies[SESSION_COOKIE]
    assert session["httponly"] is True
    assert session["samesite"].lower() == "lax"
    assert session["path"] == "/"
    assert not session["secure"]  # cookie_secure is off by default (plain-HTTP dev)
    assert int(session["max-age"]) == 12 * 3600
    token, _, signature = session.value.rpartition(".")
    assert token and signature
    csrf = cookies[CSRF_COOKIE]
    assert not csrf["httponly"]  # the web client reads it
    assert csrf.value == body["csrf_token"]

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == user.id
    assert me.json()["csrf_token"] == body["csrf_token"]


async def test_secure_cookies_when_configured(settings: Settings, clock: TestClock) -> None:
    app = create_app(
        settings.model_copy(update={"cookie_secure": True}),
        start_workers=False,
        clock=clock,
        password_hasher=cheap_hasher(),
    )
    async with app.router.lifespan_context(app):
        factory = Factory(app.state.ils)
        user = await factory.user(await factory.company())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(
                "/api/auth/sign-in", json={"email": user.email, "password": PASSWORD}
            )
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert cookies[SESSION_COOKIE]["secure"] is True
    assert cookies[CSRF_COOKIE]["secure"] is True


async def test_wrong_password_and_unknown_email_answer_alike(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user(await factory.company())

    wrong = await client.post("/api/auth/sign-in", json={"email": user.email, "password": "not it"})
    unknown = await client.post(
        "/api/auth/sign-in", json={"email": "nobody@example.com", "password": PASSWORD}
    )

    assert (wrong.status_code, wrong.json()) == (401, WRONG)
    assert (unknown.status_code, unknown.json()) == (401, WRONG)
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers


async def test_me_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert (response.status_code, response.json()) == (401, NOT_SIGNED_IN)


async def test_tampered_or_garbled_cookies_are_refused(
    client: httpx.AsyncClient, make_client: ClientMaker, factory: Factory
) -> None:
    user = await factory.user(await factory.company())
    response = await client.post(
        "/api/auth/sign-in", json={"email": user.email, "password": PASSWORD}
    )
    value = set_cookies(response)[SESSION_COOKIE].value
    token, _, signature = value.rpartition(".")
    other = make_client()
    assert (await me_with_cookie(other, value)).status_code == 200

    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (f"{token}.{flipped}", token, f"{token}.", f".{signature}", "x" * 300, "é"):
        refused = await me_with_cookie(other, forged)
        assert (refused.status_code, refused.json()) == (401, NOT_SIGNED_IN), forged


async def test_sign_out_ends_the_session_for_good(
    client: httpx.AsyncClient, make_client: ClientMaker, factory: Factory, db: DbMaker
) -> None:
    user = await factory.user(await factory.company())
    response = await client.post(
        "/api/auth/sign-in", json={"email": user.email, "password": PASSWORD}
    )
    value = set_cookies(response)[SESSION_COOKIE].value
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]

    out = await client.post("/api/auth/sign-out")

    assert out.status_code == 204
    cleared = set_cookies(out)
    assert cleared[SESSION_COOKIE].value == ""
    assert cleared[CSRF_COOKIE].value == ""
    assert (await client.get("/api/auth/me")).status_code == 401
    # The old cookie, replayed, no longer works: the session row is gone.
    replay = await me_with_cookie(make_client(), value)
    assert (replay.status_code, replay.json()) == (401, NOT_SIGNED_IN)


async def test_sign_out_without_csrf_token_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user(await factory.company())
    await sign_in(client, user.email)
    good = client.headers.pop(CSRF_HEADER)

    missing = await client.post("/api/auth/sign-out")
    wrong = await client.post("/api/auth/sign-out", headers={CSRF_HEADER: good[:-1] + "x"})

    expected = (403, {"detail": "CSRF token missing or wrong"})
    assert (missing.status_code, missing.json()) == expected
    assert (wrong.status_code, wrong.json()) == expected
    assert (await client.get("/api/auth/me")).status_code == 200  # still signed in


async def test_sessions_expire(
    client: httpx.AsyncClient, factory: Factory, clock: TestClock
) -> None:
    user = await factory.user(await factory.company())
    await sign_in(client, user.email)

    clock.advance((12 * 3600 - 60) * 1000)
    assert (await client.get("/api/auth/me")).status_code == 200
    clock.advance(61 * 1000)
    response = await client.get("/api/auth/me")
    assert (response.status_code, response.json()) == (401, NOT_SIGNED_IN)


async def test_inactive_users_and_companies_cannot_sign_in_or_stay_signed_in(
    make_client: ClientMaker, factory: Factory, db: DbMaker
) -> None:
    company = await factory.company()
    inactive = await factory.user(company, is_active=False)
    refused = await make_client().post(
        "/api/auth/sign-in", json={"email": inactive.email, "password": PASSWORD}
    )
    assert (refused.status_code, refused.json()) == (401, WRONG)

    user = await factory.user(company)
    client = await sign_in(make_client(), user.email)
    async with db() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.is_active = False
    assert (await client.get("/api/auth/me")).json() == NOT_SIGNED_IN

    other = await factory.user(await factory.company(is_active=False))
    closed = await make_client().post(
        "/api/auth/sign-in", json={"email": other.email, "password": PASSWORD}
    )
    assert (closed.status_code, closed.json()) == (401, WRONG)


async def test_sign_in_rehashes_old_parameters_and_records_the_session(
    client: httpx.AsyncClient, factory: Factory, db: DbMaker
) -> None:
    company = await factory.company()
    user = await factory.user(company)
    weaker = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
    async with db() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.password_hash = weaker.hash(PASSWORD)

    await sign_in(client, user.email)

    async with db() as session:
        stored = await session.get(User, user.id)
        sessions = (await session.scalars(select(UserSession))).all()
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "m=8," in stored.password_hash  # the app's (test) parameters now
    assert stored.last_sign_in_at is not None
    assert len(sessions) == 1
    assert len(sessions[0].id) == 64  # sha256 hex of the token, never the token


async def test_signing_in_again_replaces_the_previous_session(
    client: httpx.AsyncClient, factory: Factory, db: DbMaker
) -> None:
    user = await factory.user(await factory.company())
    await sign_in(client, user.email)
    await sign_in(client, user.email)
    async with db() as session:
        count = await session.scalar(select(func.count()).select_from(UserSession))
    assert count == 1


async def test_validation_errors_name_fields_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    secret = "patient-jane-doe@example.com"
    response = await client.post("/api/auth/sign-in", json={"email": secret, "password": ""})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"field": "password", "message": "String should have at least 1 character"}]
    }
    assert secret not in response.text

    missing = await client.post("/api/auth/sign-in", json={"email": secret})
    assert missing.json() == {"detail": [{"field": "password", "message": "Field required"}]}
    assert secret not in missing.text

    garbled = await client.post(
        "/api/auth/sign-in",
        content=b'{"email": "' + secret.encode() + b'", ',
        headers={"content-type": "application/json"},
    )
    assert garbled.status_code == 422
    assert garbled.json()["detail"][0]["field"] == "body"
    assert secret not in garbled.text


def _seed_server_database(data_dir: Path) -> tuple[str, str]:
    """The embedded default database under ``data_dir``, migrated, with one user."""

    async def seed() -> tuple[str, str]:
        url = default_database_url(data_dir)
        await upgrade_database(url)
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session, session.begin():
                company = Company(kind=CompanyKind.PRACTICE, name="Seaside Opticians")
                session.add(company)
                await session.flush()
                session.add(
                    User(
                        company_id=company.id,
                        email="ann@seaside.example",
                        name="Ann",
                        password_hash=cheap_hasher().hash(PASSWORD),
                        role=Role.ADMIN,
                    )
                )
        finally:
            await engine.dispose()
        return "ann@seaside.example", company.id

    return asyncio.run(seed())


def test_ils_serve_signs_in_over_real_http(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    email, company_id = _seed_server_database(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
    env["ILS_DATA_DIR"] = str(data_dir)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ils", "serve", "--no-workers", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(until_serving(base, proc, log.read_text))
        with httpx.Client(base_url=base, timeout=5) as client:
            signed = client.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})
            assert signed.status_code == 200, signed.text
            assert signed.json()["company"]["id"] == company_id
            me = client.get("/api/auth/me", params={"q": "Jane-Patient"})
            assert me.status_code == 200
            assert me.json()["user"]["email"] == email
            out_response = client.post(
                "/api/auth/sign-out", headers={CSRF_HEADER: signed.json()["csrf_token"]}
            )
            assert out_response.status_code == 204
            assert client.get("/api/auth/me").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    output = log.read_text()
    # uvicorn shuts down gracefully, then re-raises the signal so supervisors see it.
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "local mode" in output
    assert '"GET /api/auth/me HTTP/1.1" 200' in output
    assert "Jane-Patient" not in output  # query strings stay out of the access log
    assert "not started here" in output
    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600
