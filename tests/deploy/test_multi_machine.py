"""A fleet on one machine: two web servers and three workers, each with a data and
working directory of its own, sharing one PostgreSQL, one Redis and one S3 server.

What a load balancer needs: an order placed through web server A has its documents and
its tracing served by web server B, with the session cookie A set; a worker killed
mid-work loses nothing, the others finish its jobs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from ils.db.engine import create_engine, session_factory
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.web.security import CSRF_HEADER
from tests.conftest import delete_prefix, free_port
from tests.s3 import S3Server
from tests.support.serving import until_serving
from tests.web.api_support import accepted_connection, order_body

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
OMA = ROOT / "tests" / "data" / "oma" / "R360_1.oma"
PASSWORD = "correct horse battery staple"
SECRET = "fleet-" + "k" * 48
TIMEOUT_S = 90.0


@dataclass
class Fleet:
    tmp: Path
    env: dict[str, str]
    web: dict[str, str] = field(default_factory=dict)  # name -> base URL
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        """An ``ils`` process with its own working and data directory (a machine)."""
        home = self.tmp / name
        (home / "var").mkdir(parents=True, exist_ok=True)
        log = open(home / "process.log", "wb")  # noqa: SIM115 - handed to the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "ils", *args],
            cwd=home,
            env={**self.env, "ILS_DATA_DIR": str(home / "var")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.parent.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*/process.log"))
        )

    def stop_all(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _seed(url: str) -> tuple[str, str]:
    """A practice with a user and a patient, and a lab it is connected to; returns
    (patient id, lab id)."""
    engine = create_engine(url)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    try:
        async with session_factory(engine)() as session, session.begin():
            practice = Company(kind=CompanyKind.PRACTICE, name="Brightside Opticians")
            lab = Company(kind=CompanyKind.LAB, name="Clear View Lab", email="lab@cv.example")
            session.add_all([practice, lab])
            await session.flush()
            session.add(
                User(
                    company_id=practice.id,
                    email="ann@brightside.example",
                    name="Ann",
                    password_hash=hashed,
                    role=Role.STAFF,
                )
            )
            patient = Patient(company_id=practice.id, first_name="Ada", last_name="Byron")
            session.add_all([patient, accepted_connection(practice.id, lab.id)])
            await session.flush()
            return patient.id, lab.id
    finally:
        await engine.dispose()


async def _wait_up(fleet: Fleet, name: str, base: str) -> None:
    await until_serving(base, fleet.processes[name], fleet.logs, timeout_s=TIMEOUT_S)


@pytest.fixture
async def fleet(
    tmp_path: Path,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    s3_server: S3Server,
) -> AsyncIterator[Fleet]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILS_", "REDIS_"))}
    env |= {
        "ILS_DATABASE_URL": pg_url,
        "ILS_REDIS_URL": redis_url,
        "ILS_REDIS_PREFIX": redis_prefix,
        "ILS_SECRET_KEY": SECRET,
        "ILS_LOG_LEVEL": "WARNING",
        "ILS_QUEUES__PDF__LOCK_DURATION_MS": "3000",
        "ILS_QUEUES__PDF__STALLED_INTERVAL_MS": "1000",
        "ILS_QUEUES__OMA__LOCK_DURATION_MS": "3000",
        "ILS_QUEUES__OMA__STALLED_INTERVAL_MS": "1000",
        **s3_server.env(f"fleet-{uuid.uuid4().hex[:8]}/"),
    }
    fleet = Fleet(tmp_path, env)
    try:
        for name in ("web-a", "web-b"):
            port = free_port()
            fleet.web[name] = f"http://127.0.0.1:{port}"
            fleet.spawn(name, "serve", "--no-workers", "--port", str(port))
        for n in range(3):
            fleet.spawn(f"worker-{n}", "worker")
        for name, base in fleet.web.items():
            await _wait_up(fleet, name, base)
        yield fleet
    finally:
        fleet.stop_all()
        await delete_prefix(redis_url, redis_prefix)


async def _eventually_ok(client: httpx.AsyncClient, url: str, fleet: Fleet) -> httpx.Response:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        response = await client.get(url)
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url}: {response.status_code} {response.text[:300]}\n{fleet.logs()}")


async def _documents(client: httpx.AsyncClient, order_id: str) -> list[dict[str, str]]:
    response = await client.get("/api/documents", params={"subject": order_id})
    assert response.status_code == 200, response.text
    listed: list[dict[str, str]] = response.json()
    return listed


async def test_any_web_server_serves_what_any_machine_stored(fleet: Fleet, pg_url: str) -> None:
    patient_id, lab_id = await _seed(pg_url)
    a = httpx.AsyncClient(base_url=fleet.web["web-a"], timeout=30)
    b = httpx.AsyncClient(base_url=fleet.web["web-b"], timeout=30)
    try:
        signed = await a.post(
            "/api/auth/sign-in", json={"email": "ann@brightside.example", "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        a.headers[CSRF_HEADER] = signed.json()["csrf_token"]
        # The browser moves to server B with the cookie server A set.
        b.cookies = a.cookies
        b.headers[CSRF_HEADER] = a.headers[CSRF_HEADER]
        assert (await b.get("/api/auth/me")).status_code == 200

        placed = [await a.post("/api/orders", json=order_body(patient_id, lab_id))]
        assert placed[0].status_code == 201, placed[0].text
        order_id = placed[0].json()["id"]
        upload = await a.post(
            f"/api/orders/{order_id}/tracing",
            content=OMA.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 202, upload.text

        # More work in flight, then one worker dies with it.
        for _ in range(3):
            more = await a.post("/api/orders", json=order_body(patient_id, lab_id))
            assert more.status_code == 201, more.text
            placed.append(more)
        fleet.processes["worker-0"].send_signal(signal.SIGKILL)

        tracing = await _eventually_ok(b, f"/api/orders/{order_id}/tracing", fleet)
        assert tracing.json()["order_id"] == order_id
        for response in placed:
            oid = response.json()["id"]
            deadline = time.monotonic() + TIMEOUT_S
            while not (docs := await _documents(b, oid)):
                assert time.monotonic() < deadline, f"no document for {oid}\n{fleet.logs()}"
                await asyncio.sleep(0.2)
            pdf = await _eventually_ok(b, f"/api/documents/{docs[0]['id']}", fleet)
            assert pdf.content.startswith(b"%PDF")
    finally:
        await a.aclose()
        await b.aclose()
