"""The web API on the s3 backend when the bucket misbehaves: a damaged object is not
served (500), and a bucket that cannot be reached answers 503 for downloads and
uploads alike, with nothing stored or queued and no endpoint or secret in the body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Final

import httpx
from sqlalchemy import func, select

from ils.domain.companies import Role
from ils.domain.content import UploadedFile
from ils.settings import Settings
from ils.storage import LocalFileStorage
from ils.storage.s3 import SHA256_ATTRIBUTE, open_bucket
from ils.storage_settings import StorageSettings
from ils.web.app import create_app
from ils.web.state import WebState
from ils.workers.pdf.generate import DocumentGenerator, generate_invoice
from ils.workers.pdf.pool import InlineRenderer
from tests.conftest import free_port
from tests.s3 import S3Server
from tests.web.api_support import queued
from tests.web.conftest import BASE_URL, SECRET_KEY, Factory, cheap_hasher, sign_in
from tests.workers.pdf_support import Records, build_records

TRACING: Final = Path(__file__).resolve().parents[1] / "data" / "oma" / "R1000_1.oma"

Running = Callable[
    [StorageSettings], AbstractAsyncContextManager[tuple[WebState, Records, httpx.AsyncClient]]
]


def running(tmp_path: Path) -> Running:
    """``async with running(storage) as (state, records, lab_client)``: an app on SQLite
    with ``storage``, the PDF records, and the lab's staff signed in."""

    @asynccontextmanager
    async def run(
        storage: StorageSettings,
    ) -> AsyncIterator[tuple[WebState, Records, httpx.AsyncClient]]:
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path / "var",
            redis_url=None,
            secret_key=SECRET_KEY,
            start_workers=False,
            storage=storage,
        )
        app = create_app(settings, start_workers=False, password_hasher=cheap_hasher())
        async with app.router.lifespan_context(app):
            state: WebState = app.state.ils
            records = await build_records(state.sessions)
            user = await Factory(state).user(records.lab, Role.STAFF)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                yield state, records, await sign_in(client, user.email)

    return run


async def test_a_damaged_object_is_not_served(tmp_path: Path, s3_settings: StorageSettings) -> None:
    async with running(tmp_path)(s3_settings) as (state, records, client):
        generator = DocumentGenerator(
            state.system.worker_context().db, state.storage.documents, InlineRenderer()
        )
        document = await generate_invoice(generator, records.invoice.id)
        assert (await client.get(f"/api/documents/{document.id}")).status_code == 200
        name = f"{s3_settings.key_prefix}/documents/{document.path}"
        await open_bucket(s3_settings).put_async(
            name, b"%PDF-1.4 not this\n", attributes={SHA256_ATTRIBUTE: document.sha256}
        )
        response = await client.get(f"/api/documents/{document.id}")
        assert response.status_code == 500
        assert response.json() == {"detail": "the stored document is damaged"}


async def test_an_unreachable_bucket_answers_503(tmp_path: Path, s3_server: S3Server) -> None:
    down = s3_server.storage_settings(
        "down", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_s=5.0
    )
    async with running(tmp_path)(down) as (state, records, client):
        # The row is what matters here: its file goes to a directory the app never reads.
        elsewhere = LocalFileStorage(tmp_path / "elsewhere")
        generator = DocumentGenerator(state.system.worker_context().db, elsewhere, InlineRenderer())
        document = await generate_invoice(generator, records.invoice.id)
        response = await client.get(f"/api/documents/{document.id}")
        assert response.status_code == 503
        assert response.json() == {"detail": "document storage is unavailable, try again"}

        upload = await client.post(
            f"/api/orders/{records.order.id}/tracing",
            content=TRACING.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 503
        assert upload.json() == {"detail": "file storage is unavailable, try again"}
        async with state.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(UploadedFile)) == 0
        assert await queued(state, "oma") == []
