"""Shared fixtures: the real Redis and PostgreSQL servers of this machine, and stores.

Tests that need a server fail (they do not skip) when it is unreachable, so a CI run
without Redis or PostgreSQL goes red. ``ILS_TEST_ALLOW_MISSING_SERVICES=1`` turns the
failure into a skip for a developer machine without them.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from ils.clock import Clock, SystemClock
from ils.db.engine import create_engine
from ils.db.migrations import upgrade_database
from ils.jobs import system as job_system
from ils.jobs.catalogue import Catalogue, build_catalogue
from ils.jobs.stores.base import JobStore
from ils.jobs.stores.local.store import LocalJobStore
from ils.jobs.stores.memory.state import MemoryState
from ils.jobs.stores.memory.store import MemoryJobStore
from ils.jobs.stores.redis.store import RedisJobStore
from ils.settings import Settings
from tests.support.pg_clones import PgClones
from tests.support.sqlite_template import build_template, from_template

# One moto S3 server for the whole run, shared by every test that uses S3.
pytest_plugins = ["tests.s3"]

REDIS_URL = os.environ.get("ILS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get(
    "ILS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
STORE_KINDS = ("redis", "sqlite", "postgres", "memory")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _missing(service: str) -> None:
    message = f"{service} is not reachable; start it (see .ci/run)"
    if os.environ.get("ILS_TEST_ALLOW_MISSING_SERVICES") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server of this machine (fails the test when it is down)."""
    if not _reachable(REDIS_URL, 6379):
        _missing("Redis")
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server of this machine (fails the test when it is down)."""
    if not _reachable(PG_ADMIN_URL, 5432):
        _missing("PostgreSQL")
    return PG_ADMIN_URL


def _psql(admin_url: str, sql: str) -> None:
    """Run one statement as the admin user with ``psql`` (fixtures here are synchronous,
    so they can be requested from inside async fixtures)."""
    import subprocess

    parsed = urlparse(admin_url.replace("+asyncpg", ""))
    subprocess.run(
        [
            "psql",
            "-h",
            parsed.hostname or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            "-d",
            parsed.path.lstrip("/") or "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per test session, the template each
    test's database is cloned from: a clone takes a few milliseconds, where running
    every migration for each test took most of the PostgreSQL tests' time."""
    import subprocess
    import sys

    name = f"ils_tpl_{uuid.uuid4().hex[:12]}"
    _psql(pg_admin_url, f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    migrate = "import asyncio, sys; from ils.db.migrations import upgrade_database; "
    migrate += "asyncio.run(upgrade_database(sys.argv[1]))"
    try:
        subprocess.run(
            [sys.executable, "-c", migrate, f"{base}/{name}"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield name
    finally:
        _psql(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_clones(pg_admin_url: str, pg_template: str) -> Iterator[PgClones]:
    """Clones of the template made ahead of the tests that take them (see
    ``tests.support.pg_clones``); closed before the template is dropped."""
    clones = PgClones(functools.partial(_psql, pg_admin_url), pg_template)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture
def pg_url(pg_admin_url: str, pg_clones: PgClones) -> Iterator[str]:
    """A PostgreSQL database of one test, at the current migration (cloned from the
    session's template), dropped afterwards."""
    name = pg_clones.take()
    base = pg_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        pg_clones.give_back(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per test session (see
    ``tests.support.sqlite_template``)."""
    return build_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(autouse=True)
def sqlite_first_start_from_template(
    sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system's first start on a fresh data directory copies the migrated template
    instead of running every migration (the result is the same database)."""
    monkeypatch.setattr(
        job_system, "upgrade_database", from_template(sqlite_template, upgrade_database)
    )


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    """A SQLite database file in the test's temporary directory."""
    return f"sqlite:///{tmp_path}/ils.db"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of its own for each test, so tests never see each other's queues."""
    return f"ilstest-{uuid.uuid4().hex[:10]}"


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (test clean-up)."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


StoreFactory = Callable[..., Awaitable[JobStore]]


@pytest.fixture
def test_catalogue() -> Catalogue:
    """The real catalogue with test-friendly timings on every queue."""
    fast = {"backoff_delay_ms": 50, "lock_duration_ms": 1000, "stalled_interval_ms": 500}
    return build_catalogue(
        Settings(
            queues=dict.fromkeys(("email", "pdf", "notification", "ai", "oma", "scheduled"), fast)
        )
    )


@pytest.fixture(params=STORE_KINDS)
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds stores of one kind (the test runs once per kind: redis, sqlite, postgres,
    memory).

    Call ``await make_store(catalogue, clock=..., max_stalled_count=...)``; every store
    made shares one database, Redis prefix or ``MemoryState``, like processes of one
    deployment.
    """
    kind: str = request.param
    made: list[JobStore] = []
    cleanup: list[Callable[[], Awaitable[None]]] = []
    if kind == "memory":
        state = MemoryState()

        async def factory(
            catalogue: Catalogue, clock: Clock | None = None, max_stalled_count: int = 1
        ) -> JobStore:
            store = MemoryJobStore(
                catalogue, clock=clock, max_stalled_count=max_stalled_count, state=state
            )
            made.append(store)
            return store
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        cleanup.append(lambda: delete_prefix(url, prefix))

        async def factory(
            catalogue: Catalogue, clock: Clock | None = None, max_stalled_count: int = 1
        ) -> JobStore:
            store = RedisJobStore(
                url, catalogue, prefix=prefix, max_stalled_count=max_stalled_count
            )
            made.append(store)
            return store
    else:
        url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
        # PostgreSQL's is cloned from its migrated template; SQLite's is copied.
        if kind == "sqlite":
            await from_template(request.getfixturevalue("sqlite_template"), upgrade_database)(url)
        engines = []

        async def factory(
            catalogue: Catalogue, clock: Clock | None = None, max_stalled_count: int = 1
        ) -> JobStore:
            engine = create_engine(url)
            engines.append(engine)
            store = LocalJobStore(
                engine,
                catalogue,
                clock=clock or SystemClock(),
                max_stalled_count=max_stalled_count,
                poll_interval_ms=20,
            )
            made.append(store)
            return store

        async def dispose() -> None:
            for engine in engines:
                await engine.dispose()

        cleanup.append(dispose)
    try:
        yield factory
    finally:
        for store in made:
            await store.close()
        for step in cleanup:
            await step()


@pytest.fixture
async def store(make_store: StoreFactory, test_catalogue: Catalogue) -> JobStore:
    """One store of the kind under test, with the test catalogue."""
    return await make_store(test_catalogue)


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    return "asyncio"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: Redis, PostgreSQL or Node must not go missing."""
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1


class RedisServer:
    """A Redis server of the test's own (AOF on, like production), stoppable at will."""

    def __init__(self, directory: str, port: int, *extra: str) -> None:
        self.directory = directory
        self.port = port
        self.extra = extra
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        import subprocess

        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "yes",
                "--logfile",
                f"{self.directory}/redis.log",
                *self.extra,
            ],
            check=True,
        )
        self._wait(up=True)

    def stop(self) -> None:
        import subprocess

        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown"], check=False, capture_output=True
        )
        self._wait(up=False)

    def _wait(self, *, up: bool) -> None:
        import time

        for _ in range(200):
            if _reachable(self.url, self.port) == up:
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis on {self.port} did not {'start' if up else 'stop'}")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: os.PathLike[str]) -> Iterator[RedisServer]:
    """A private Redis server for tests that stop it (never the machine's own)."""
    import shutil

    if shutil.which("redis-server") is None:
        _missing("redis-server")
    directory = os.path.join(str(tmp_path), "redis")
    os.makedirs(directory)
    server = RedisServer(directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
