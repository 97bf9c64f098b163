"""Fixtures for the web app, on SQLite and on PostgreSQL (every test runs on both).

What router tests use:

* ``app``: a :func:`~ils.web.app.create_app` app with its lifespan running, workers off,
  a cheap argon2 hasher and the test clock. The database is a SQLite file under the
  test's ``tmp_path`` or a fresh PostgreSQL database (migrated, as production is).
  ``state`` is its :class:`~ils.web.state.WebState` (``state.system`` is the job
  system: look at enqueued jobs with ``state.system.local.list_jobs(...)``).
* ``client``: an ``httpx.AsyncClient`` on the app (base URL ``http://test``); cookies
  it receives are sent back. ``make_client()`` gives more, one per signed-in user.
* ``factory``: rows straight in the database, committed:
  ``await factory.company(kind=CompanyKind.LAB, name="Lens Lab")``,
  ``await factory.user(company, role=Role.STAFF, email=..., password=...)``
  (password hashed with the app's hasher; default password ``PASSWORD``),
  ``await factory.add(row, ...)`` for any other model.
* ``sign_in(client, email, password)``: signs in and returns the client with the
  ``X-CSRF-Token`` header set, so POSTs pass the CSRF check.
* ``signed_in``: all of it in one call, ``client, user = await signed_in(Role.STAFF,
  CompanyKind.PRACTICE)`` (a new company unless ``company=`` is given).
* ``db``: ``async with db() as session:`` to read what a request wrote.
* ``clock``: real time plus an offset; ``clock.advance(ms)`` jumps ahead (session
  expiry) without disturbing the job system.
* ``run_pdf_until_failed(state, handler, count)``: runs the pdf queue with ``handler``
  until ``count`` jobs failed for good (failed jobs for the pages and APIs to show).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.types import new_id
from ils.jobs.job_types import OrderSheetPdf
from ils.jobs.registry import Handler, HandlerRegistry
from ils.jobs.runner import Runner
from ils.settings import Settings
from ils.testing import eventually
from ils.web.app import create_app
from ils.web.security import CSRF_HEADER
from ils.web.state import WebState
from tests.conftest import free_port
from tests.web.browser import site  # noqa: F401  (the browser tests' server, one per module)

DB_KINDS = ("sqlite", "postgres")
BASE_URL = "http://test"
PASSWORD = "correct horse battery staple"
SECRET_KEY = "test-secret-key-not-for-production"
#: How long :func:`run_pdf_until_failed` waits for its jobs to fail.
FAIL_TIMEOUT_S = 10.0
#: How long the ``base`` fixture's server may take to start and to stop.
SERVE_WAIT_S = 10.0


def cheap_hasher() -> PasswordHasher:
    """argon2id with the smallest parameters: the same code path, milliseconds per hash."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class TestClock:
    """Real time plus an offset tests can push forward."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def advance(self, ms: int) -> None:
        """Jump ``ms`` milliseconds ahead."""
        self.offset_ms += ms


@pytest.fixture
def clock() -> TestClock:
    """The app's clock (session expiry and the job system)."""
    return TestClock()


@pytest.fixture(params=DB_KINDS)
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of one test's app: SQLite under ``tmp_path`` or a fresh PostgreSQL
    database, local job store, workers off."""
    common: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "redis_url": None,
        "secret_key": SECRET_KEY,
        "start_workers": False,
        "local_poll_interval_ms": 20,
    }
    if request.param == "sqlite":
        return Settings(_env_file=None, **common)
    # Only the embedded default migrates itself; a configured database is migrated
    # deliberately, as in production: ``pg_url`` is a clone of a template at head.
    url: str = request.getfixturevalue("pg_url")
    return Settings(_env_file=None, database_url=url, **common)


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The settings ``app`` is created with: a test module that needs other rules
    (sign-in throttling, stream caps) overrides this fixture, not ``app``."""
    return settings


@pytest.fixture
async def app(app_settings: Settings, clock: TestClock) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (job system open, workers off)."""
    application = create_app(
        app_settings, start_workers=False, clock=clock, password_hasher=cheap_hasher()
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def state(app: FastAPI) -> WebState:
    """The running app's state: settings, job system, session factory, passwords."""
    web_state = app.state.ils
    assert isinstance(web_state, WebState)
    return web_state


DbMaker = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@pytest.fixture
def db(state: WebState) -> DbMaker:
    """``async with db() as session``: a database session of the app's engine."""
    return state.sessions


ClientMaker = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def make_client(app: FastAPI) -> AsyncIterator[ClientMaker]:
    """Makes clients of the app (each with its own cookies); closed after the test."""
    made: list[httpx.AsyncClient] = []

    def maker() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        made.append(client)
        return client

    try:
        yield maker
    finally:
        for client in made:
            await client.aclose()


@pytest.fixture
def client(make_client: ClientMaker) -> httpx.AsyncClient:
    """A client of the app, not signed in."""
    return make_client()


class Factory:
    """Creates rows directly in the app's database (committed at once)."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    async def add(self, *rows: Any) -> None:
        """Insert ``rows`` (any domain models) in one transaction."""
        async with self.state.sessions() as session, session.begin():
            session.add_all(rows)

    async def company(
        self, kind: CompanyKind = CompanyKind.PRACTICE, name: str | None = None, **fields: Any
    ) -> Company:
        """A company of ``kind`` (active); ``fields`` set any other column."""
        company = Company(kind=kind, name=name or f"{kind.value.title()} {new_id()[:6]}", **fields)
        await self.add(company)
        return company

    async def user(
        self,
        company: Company,
        role: Role = Role.STAFF,
        *,
        email: str | None = None,
        password: str = PASSWORD,
        name: str = "Test User",
        **fields: Any,
    ) -> User:
        """A user of ``company`` whose password is ``password`` (hashed like real ones)."""
        user = User(
            company_id=company.id,
            email=(email or f"{role.value}-{new_id()[:8]}@example.com").lower(),
            name=name,
            password_hash=await self.state.passwords.hash(password),
            role=role,
            **fields,
        )
        await self.add(user)
        return user


@pytest.fixture
def factory(state: WebState) -> Factory:
    """Companies, users and other rows straight in the database."""
    return Factory(state)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.AsyncClient:
    """Sign ``client`` in; its later requests carry the session cookie and CSRF header."""
    response = await client.post("/api/auth/sign-in", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]
    return client


SignedIn = Callable[..., Awaitable[tuple[httpx.AsyncClient, User]]]


@pytest.fixture
def signed_in(factory: Factory, make_client: ClientMaker) -> SignedIn:
    """``await signed_in(role, kind, company=None, **user_fields)`` → (client, user)."""

    async def make(
        role: Role = Role.STAFF,
        kind: CompanyKind = CompanyKind.PRACTICE,
        *,
        company: Company | None = None,
        **user_fields: Any,
    ) -> tuple[httpx.AsyncClient, User]:
        company = company or await factory.company(kind)
        user = await factory.user(company, role, **user_fields)
        password = user_fields.get("password", PASSWORD)
        return await sign_in(make_client(), user.email, password), user

    return make


async def run_pdf_until_failed(
    state: WebState, handler: Handler[OrderSheetPdf], count: int
) -> None:
    """Run the pdf queue with ``handler`` until ``count`` jobs failed for good, then
    stop it (``AssertionError`` with the counts seen after :data:`FAIL_TIMEOUT_S`)."""
    system = state.system
    registry = HandlerRegistry(system.job_types)
    registry.register(OrderSheetPdf, handler)
    runner = Runner(system.stores(), [system.catalogue["pdf"]], registry)
    seen: dict[str, int] = {}

    async def failed() -> bool:
        seen.update(await system.monitor.counts("pdf"))
        return seen["failed"] >= count

    runner.start()
    try:
        await eventually(
            failed,
            FAIL_TIMEOUT_S,
            interval=0.02,
            message=lambda: (
                f"{count} pdf job(s) did not fail in {FAIL_TIMEOUT_S} s; counts seen: {seen}"
            ),
        )
    finally:
        await runner.stop(5)


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:
    """The app served over real HTTP (its lifespan already runs): live streams need
    it (``tests.web.streams``)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), SERVE_WAIT_S)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, SERVE_WAIT_S)


@pytest.fixture
async def browsers(base: str) -> AsyncIterator[Any]:
    """``await browsers(user)``: a new signed-in session of ``user``
    (:class:`tests.web.streams.Browser`)."""
    from tests.web.streams import Browser  # it signs in with this module's sign_in

    made: list[Browser] = []

    async def make(user: User) -> Browser:
        browser = Browser(base, user)
        made.append(browser)
        return await browser.sign_in()

    yield make
    for browser in made:
        await browser.close()
