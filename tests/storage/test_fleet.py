"""Two machines, one bucket: what one machine stores, another serves.

Machine B is a real ``ils worker`` process (its own data directory) working the pdf
and oma queues. Machine A is the web app in this test process (another data
directory, workers off). They share what a fleet shares, PostgreSQL (rows, and the
jobs in local mode) and the S3 bucket, and nothing else: B renders an invoice that A
serves through ``/api/documents``, and A takes a tracing upload that B reads,
measures and answers with a lab work ticket that A serves too. Neither data directory
ever holds a document or an upload.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ils.db.migrations import upgrade_database
from ils.domain.companies import Role
from ils.domain.content import Document, OrderTracing, TracingStatus
from ils.settings import Settings
from ils.web.app import create_app
from ils.web.state import WebState
from tests.s3 import S3Server, log_tail
from tests.web.conftest import BASE_URL, SECRET_KEY, Factory, cheap_hasher, sign_in
from tests.workers.pdf_support import INVOICE_NUMBER, ORDER_NUMBER, build_records, pdf_text
from tests.workers.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT: Final = Path(__file__).resolve().parents[2]
TRACING: Final = ROOT / "tests" / "data" / "oma" / "R1000_1.oma"
#: A fresh worker process imports everything and starts its render pool first.
JOB_TIMEOUT_S: Final = 120.0


@pytest.fixture
async def database(pg_url: str) -> str:
    """The fleet's PostgreSQL database, migrated (as production is, deliberately)."""
    await upgrade_database(pg_url)
    return pg_url


@pytest.fixture
def machine_b(
    tmp_path: Path, database: str, s3_server: S3Server, key_prefix: str
) -> Iterator[Path]:
    """An ``ils worker`` process for the pdf and oma queues; its log file."""
    log = tmp_path / "machine-b.log"
    env = {
        **os.environ,
        "ILS_DATA_DIR": str(tmp_path / "machine-b"),
        "ILS_DATABASE_URL": database,
        "ILS_REDIS_URL": "",
        "ILS_LOCAL_POLL_INTERVAL_MS": "20",
        "ILS_SHUTDOWN_GRACE_S": "5",
        "ILS_PDF__POOL_SIZE": "1",
        **s3_server.env(key_prefix),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ils", "worker", "--queues", "pdf,oma"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
async def machine_a(
    tmp_path: Path, database: str, s3_server: S3Server, key_prefix: str
) -> AsyncIterator[FastAPI]:
    """The web app of another machine: its own data directory, no workers."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "machine-a",
        database_url=database,
        redis_url=None,
        secret_key=SECRET_KEY,
        start_workers=False,
        local_poll_interval_ms=20,
        storage=s3_server.storage_settings(key_prefix),
    )
    app = create_app(settings, start_workers=False, password_hasher=cheap_hasher())
    async with app.router.lifespan_context(app):
        yield app


async def test_one_machine_serves_what_another_stored(
    machine_a: FastAPI, machine_b: Path, s3_server: S3Server, key_prefix: str, tmp_path: Path
) -> None:
    state: WebState = machine_a.state.ils
    records = await build_records(state.sessions)
    lab_staff = await Factory(state).user(records.lab, Role.STAFF)
    transport = httpx.ASGITransport(app=machine_a)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        await sign_in(client, lab_staff.email)

        async def document(kind: str) -> Document | None:
            async with state.sessions() as session:
                found: Document | None = await session.scalar(
                    select(Document).where(Document.kind == kind)
                )
                return found

        async def until(check: Callable[[], Awaitable[object]]) -> None:
            async def found() -> bool:
                return await check() is not None

            try:
                await eventually(found, JOB_TIMEOUT_S)
            except AssertionError:
                raise AssertionError(
                    f"machine B did not finish; its log:\n{log_tail(machine_b)}"
                ) from None

        # B renders the invoice; A serves it from the bucket.
        await state.system.helpers.queue_invoice_pdf(records.invoice.id)
        await until(lambda: document("invoice"))
        invoice = await document("invoice")
        assert invoice is not None
        response = await client.get(f"/api/documents/{invoice.id}")
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == invoice.sha256
        assert INVOICE_NUMBER in pdf_text(response.content)

        # A takes the tracing upload; B reads it from the bucket, and its ticket comes back.
        upload = await client.post(
            f"/api/orders/{records.order.id}/tracing",
            content=TRACING.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 202, upload.text
        file_id = upload.json()["file"]["id"]

        async def tracing() -> OrderTracing | None:
            async with state.sessions() as session:
                found: OrderTracing | None = await session.scalar(
                    select(OrderTracing).where(OrderTracing.file_id == file_id)
                )
                return found

        await until(tracing)
        row = await tracing()
        assert row is not None and row.status is not TracingStatus.UNREADABLE
        assert sorted(row.measurements) == ["L", "R"]
        await until(lambda: document("lab_work_ticket"))
        ticket = await document("lab_work_ticket")
        assert ticket is not None
        response = await client.get(f"/api/documents/{ticket.id}")
        assert response.status_code == 200, response.text
        assert ORDER_NUMBER in pdf_text(response.content)

    listing = s3_server.listing(key_prefix)
    lab = records.lab.id
    assert f"{key_prefix}/documents/{lab}/invoice/{records.invoice.id}/{invoice.id}.pdf" in listing
    assert f"{key_prefix}/uploads/{lab}/{file_id}.oma" in listing
    for machine in ("machine-a", "machine-b"):
        for area in ("documents", "uploads"):
            assert not (tmp_path / machine / area).exists(), f"{machine} kept {area} on disk"
