"""``X-Forwarded-For`` is believed from the proxies of ``ILS_TRUSTED_PROXIES`` only.

A real ``ils serve`` process answers real HTTP from 127.0.0.1 (the peer a local
reverse proxy, or any local user, would be), because what decides is uvicorn's
configuration, which only a served request goes through. Each request claims to come
from another address; the audit log (``GET /api/queue/audit``) shows which address
the server recorded for an audited operation.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.settings import Settings, default_database_url
from ils.testing import wait_until
from ils.web.security import CSRF_HEADER
from tests.conftest import free_port
from tests.web.conftest import PASSWORD, cheap_hasher

EMAIL = "ann@lab.example"
CLAIMED = "203.0.113.9"  # TEST-NET-3: an address the client makes up
#: Starts ``ils serve`` with ``ILS_TRUSTED_PROXIES`` (``None``: unset); a client of it.
Serve = Callable[[str | None], httpx.Client]


def _seed(data_dir: Path) -> None:
    """The embedded default database under ``data_dir``, migrated, with one admin."""

    async def seed() -> None:
        url = default_database_url(data_dir)
        await upgrade_database(url)
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session, session.begin():
                company = Company(kind=CompanyKind.LAB, name="Ann's lens lab")
                session.add(company)
                await session.flush()
                session.add(
                    User(
                        company_id=company.id,
                        email=EMAIL,
                        name="Ann",
                        password_hash=cheap_hasher().hash(PASSWORD),
                        role=Role.ADMIN,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(seed())


def _up(client: httpx.Client, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "ils serve exited"
    try:
        return client.get("/healthz/live").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(trusted_proxies)``: an ``ils serve`` process, as a client of it."""
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []

    def start(trusted: str | None) -> httpx.Client:
        data_dir = tmp_path / "var"
        data_dir.mkdir()
        _seed(data_dir)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ILS_")}
        env.pop("FORWARDED_ALLOW_IPS", None)
        env["ILS_DATA_DIR"] = str(data_dir)
        if trusted is not None:
            env["ILS_TRUSTED_PROXIES"] = trusted
        with open(tmp_path / "serve.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ils", "serve", "--no-workers", "--port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        clients.append(client)
        wait_until(lambda: _up(client, proc), timeout=60, interval=0.1, message="not serving")
        return client

    try:
        yield start
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


def _audited_ip(client: httpx.Client) -> str | None:
    """Sign in and run one audited operation, each request claiming ``CLAIMED``; the
    address the audit log recorded."""
    forwarded = {"X-Forwarded-For": CLAIMED}
    signed = client.post(
        "/api/auth/sign-in", json={"email": EMAIL, "password": PASSWORD}, headers=forwarded
    )
    assert signed.status_code == 200, signed.text
    csrf = {CSRF_HEADER: signed.json()["csrf_token"], **forwarded}
    retried = client.post("/api/queue/email/retry-failed", headers=csrf)
    assert retried.status_code == 200, retried.text
    (entry,) = client.get("/api/queue/audit", headers=forwarded).json()["items"]
    assert entry["action"] == "retry-failed"
    ip = entry["ip"]
    assert ip is None or isinstance(ip, str)
    return ip


@pytest.mark.parametrize("trusted", [None, "10.0.0.0/8"], ids=["unset", "another-network"])
def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    serve: Serve, trusted: str | None
) -> None:
    assert _audited_ip(serve(trusted)) == "127.0.0.1"


def test_forwarded_for_is_believed_from_a_trusted_proxy(serve: Serve) -> None:
    assert _audited_ip(serve("192.0.2.1, 127.0.0.0/8")) == CLAIMED


def test_a_trusted_proxy_must_be_an_address_or_a_network() -> None:
    assert Settings(_env_file=None, trusted_proxies=" 10.0.0.1 ,fd00::/8,").trusted_proxies == (
        "10.0.0.1,fd00::/8"
    )
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings(_env_file=None, trusted_proxies="10.0.0.1,proxy.example")
