"""The PDF worker on a real database: jobs, storage, versions, retries, failures.

Local mode on SQLite (and PostgreSQL where marked), real rows from
``pdf_support.build_records``. Most tests call the handlers directly with a fixed
job id (as a retry would) and render inline; the end-to-end tests run the ``pdf``
queue with the process pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.content import Document
from ils.domain.orders import Order, OrderStatus
from ils.errors import PermanentJobError
from ils.jobs.model import JobRef, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.jobs.worker_process import run_workers
from ils.settings import Settings
from ils.workers import pdf
from ils.workers.pdf import PdfWorker
from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.errors import DocumentDataError
from ils.workers.pdf.generate import (
    DocumentGenerator,
    generate_examination_form,
    generate_invoice,
    generate_lab_work_ticket,
    generate_order_sheet,
    generate_receipt,
)
from ils.workers.pdf.pool import InlineRenderer, ProcessPoolRenderer
from tests.workers.pdf_support import (
    INVOICE_NUMBER,
    ORDER_NUMBER,
    PATIENT_FIRST,
    PATIENT_LAST,
    Records,
    build_records,
    pdf_text,
)
from tests.workers.support import FakeContext, eventually

FAST_PDF = {"backoff_delay_ms": 50, "lock_duration_ms": 5000, "stalled_interval_ms": 1000}


@dataclass
class PdfEnv:
    system: JobSystem
    worker: PdfWorker
    registry: HandlerRegistry
    records: Records
    sessions: async_sessionmaker[AsyncSession]
    documents_dir: Path

    @property
    def generator(self) -> DocumentGenerator:
        return self.worker.generator

    async def handle(self, name: str, payload: dict[str, Any], job_id: str) -> Any:
        """Call the registered handler as the runner would, with ``job_id``."""
        registration = self.registry.lookup("pdf", name)
        assert registration is not None
        parsed = registration.parse({"type": name, **payload})
        return await registration.handler(parsed, FakeContext(job_id, queue="pdf"))

    async def run(self, *refs: JobRef, timeout: float = 60.0) -> list[Any]:
        """Work the pdf queue until every job of ``refs`` is completed or failed."""
        runner = Runner(self.system.stores(), [self.system.catalogue["pdf"]], self.registry)
        runner.start()

        async def settled() -> bool:
            for ref in refs:
                record = await self.system.local.get_job("pdf", ref.job_id)
                if record is None or record.state not in (JobState.COMPLETED, JobState.FAILED):
                    return False
            return True

        try:
            await eventually(settled, timeout)
        finally:
            await runner.stop(5)
        return [await self.system.local.get_job("pdf", ref.job_id) for ref in refs]

    async def documents(self) -> list[Document]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Document).order_by(Document.created_at))
            return list(rows)

    def files(self) -> list[Path]:
        """Every file under the documents directory (temporary files included)."""
        if not self.documents_dir.exists():
            return []
        return sorted(p for p in self.documents_dir.rglob("*") if p.is_file())


EnvFactory = Callable[..., Awaitable[PdfEnv]]


@pytest.fixture
async def make_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EnvFactory]:
    made: list[PdfEnv] = []

    async def factory(database: str = "sqlite", *, pool: bool = False) -> PdfEnv:
        options: dict[str, Any] = {
            "data_dir": tmp_path / "var",
            "redis_url": None,
            "local_poll_interval_ms": 20,
            "queues": {"pdf": FAST_PDF},
            "pdf": {"pool_size": 1},
        }
        if database == "postgres":
            url = request.getfixturevalue("pg_url")
            await upgrade_database(url)
            options["database_url"] = url
        system = await JobSystem.open(Settings(_env_file=None, **options))
        registry = HandlerRegistry(system.job_types)
        worker = pdf.register(registry, system.worker_context())
        if not pool:
            worker.generator.renderer = InlineRenderer()
        sessions = session_factory(system.engine)
        env = PdfEnv(
            system,
            worker,
            registry,
            await build_records(sessions),
            sessions,
            system.settings.documents_dir,
        )
        made.append(env)
        return env

    try:
        yield factory
    finally:
        for env in made:
            await env.system.close()


# -- end to end through the queue (process pool) ----------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_queued_jobs_render_in_the_pool_and_store_documents(
    make_env: EnvFactory, database: str
) -> None:
    env = await make_env(database, pool=True)
    r = env.records
    helpers = env.system.helpers
    refs = [
        await helpers.queue_order_sheet_pdf(r.order.id),
        await helpers.queue_lab_work_ticket_pdf(r.order.id),
        await helpers.queue_invoice_pdf(r.invoice.id),
        await helpers.queue_receipt_pdf(r.invoice.id),
        await helpers.queue_examination_form_pdf(r.examination.id),
    ]
    jobs = await env.run(*refs)
    assert [job.state for job in jobs] == [JobState.COMPLETED] * 5, [j.failed_reason for j in jobs]
    documents = {d.kind: d for d in await env.documents()}
    assert set(documents) == {k.value for k in DocumentKind}
    for job in jobs:
        assert job.result["documentId"] == documents[job.result["kind"]].id
        assert job.result["version"] == 1
    owners = {kind: d.company_id for kind, d in documents.items()}
    assert owners == {
        "order_sheet": r.practice.id,
        "lab_work_ticket": r.lab.id,
        "invoice": r.lab.id,
        "receipt": r.lab.id,
        "examination_form": r.practice.id,
    }
    for document in documents.values():
        content = (env.documents_dir / document.path).read_bytes()
        assert hashlib.sha256(content).hexdigest() == document.sha256
        assert len(content) == document.size_bytes
        assert document.job_id is not None
    ticket = pdf_text((env.documents_dir / documents["lab_work_ticket"].path).read_bytes())
    assert ORDER_NUMBER in ticket
    assert PATIENT_LAST not in ticket and PATIENT_FIRST not in ticket
    assert "P-0042" in ticket
    invoice = pdf_text((env.documents_dir / documents["invoice"].path).read_bytes())
    assert INVOICE_NUMBER in invoice and ORDER_NUMBER in invoice
    assert documents["invoice"].filename == f"invoice-{INVOICE_NUMBER}-v1.pdf"
    exam = pdf_text((env.documents_dir / documents["examination_form"].path).read_bytes())
    assert PATIENT_LAST in exam and "CONFIDENTIAL" in exam
    assert env.worker.generator.renderer.started  # type: ignore[attr-defined]


async def test_missing_order_fails_the_job_at_once(make_env: EnvFactory) -> None:
    env = await make_env()
    ref = await env.system.helpers.queue_order_sheet_pdf("0" * 32)
    (job,) = await env.run(ref)
    assert job.state == JobState.FAILED
    assert job.attempts_made == 1  # permanent: no retry
    assert "not found" in (job.failed_reason or "")
    assert await env.documents() == []
    assert env.files() == []


async def test_pool_stops_when_the_job_system_closes(make_env: EnvFactory) -> None:
    env = await make_env(pool=True)
    renderer = env.generator.renderer
    assert isinstance(renderer, ProcessPoolRenderer)
    assert not renderer.started  # nothing starts before the first document
    await generate_invoice(env.generator, env.records.invoice.id)
    assert renderer.started
    await env.system.close()
    assert not renderer.started


# -- idempotency and versions -----------------------------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_retried_job_leaves_one_version(make_env: EnvFactory, database: str) -> None:
    env = await make_env(database)
    payload = {"orderId": env.records.order.id}
    first = await env.handle("lab-work-ticket", payload, job_id="job-1")
    again = await env.handle("lab-work-ticket", payload, job_id="job-1")
    assert again == first
    documents = await env.documents()
    assert [(d.version, d.job_id) for d in documents] == [(1, "job-1")]
    assert len(env.files()) == 1


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_regenerating_makes_version_two(make_env: EnvFactory, database: str) -> None:
    env = await make_env(database)
    payload = {"invoiceId": env.records.invoice.id}
    first = await env.handle("invoice", payload, job_id="job-1")
    second = await env.handle("invoice", payload, job_id="job-2")
    assert (first["version"], second["version"]) == (1, 2)
    assert first["documentId"] != second["documentId"]
    # Another kind of the same subject counts its own versions.
    receipt = await env.handle("receipt", payload, job_id="job-3")
    assert receipt["version"] == 1
    documents = await env.documents()
    assert len(documents) == 3 and len(env.files()) == 3
    by_version = {d.version: d for d in documents if d.kind == "invoice"}
    assert "version 2" in pdf_text((env.documents_dir / by_version[2].path).read_bytes())
    assert by_version[2].filename == f"invoice-{INVOICE_NUMBER}-v2.pdf"


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_concurrent_regenerations_get_distinct_versions(
    make_env: EnvFactory, database: str
) -> None:
    env = await make_env(database)
    order_id = env.records.order.id
    made = await asyncio.gather(*(generate_order_sheet(env.generator, order_id) for _ in range(4)))
    assert sorted(d.version for d in made) == [1, 2, 3, 4]
    assert len(env.files()) == 4


async def test_concurrent_attempts_of_one_job_store_once(make_env: EnvFactory) -> None:
    env = await make_env()
    order_id = env.records.order.id
    made = await asyncio.gather(
        *(generate_lab_work_ticket(env.generator, order_id, job_id="job-x") for _ in range(3))
    )
    assert {d.id for d in made} == {made[0].id}
    assert len(await env.documents()) == 1
    assert len(env.files()) == 1


async def test_a_job_id_reused_for_another_subject_is_refused(make_env: EnvFactory) -> None:
    env = await make_env()
    await generate_order_sheet(env.generator, env.records.order.id, job_id="job-1")
    with pytest.raises(DocumentDataError, match="another document"):
        await generate_invoice(env.generator, env.records.invoice.id, job_id="job-1")


async def test_the_public_functions_return_stored_documents(make_env: EnvFactory) -> None:
    env = await make_env()
    r = env.records
    made = [
        await generate_order_sheet(env.generator, r.order.id),
        await generate_lab_work_ticket(env.generator, r.order.id),
        await generate_invoice(env.generator, r.invoice.id),
        await generate_receipt(env.generator, r.invoice.id),
        await generate_examination_form(env.generator, r.examination.id),
    ]
    assert [d.kind for d in made] == [k.value for k in DocumentKind]
    assert all(d.job_id is None and d.version == 1 for d in made)
    assert len(env.files()) == 5


# -- missing and inconsistent data -----------------------------------------------------


async def _fails(env: PdfEnv, name: str, payload: dict[str, Any], match: str) -> None:
    with pytest.raises(PermanentJobError, match=match):
        await env.handle(name, payload, job_id=f"job-{name}")
    assert await env.documents() == []
    assert env.files() == []


async def test_invoice_without_lines_fails_without_a_file(make_env: EnvFactory) -> None:
    env = await make_env()
    await _fails(env, "invoice", {"invoiceId": env.records.empty_invoice.id}, "no lines")


async def test_receipt_without_payment_fails(make_env: EnvFactory) -> None:
    env = await make_env()
    # The empty invoice has neither lines nor payments: lines are checked first.
    await _fails(env, "receipt", {"invoiceId": env.records.empty_invoice.id}, "no lines")


async def test_deleted_records_fail(make_env: EnvFactory) -> None:
    env = await make_env()
    await _fails(env, "examination-form", {"examinationId": "f" * 32}, "not found")
    await _fails(env, "invoice", {"invoiceId": "e" * 32}, "not found")


async def test_inconsistent_order_fails(make_env: EnvFactory) -> None:
    env = await make_env()
    async with env.sessions() as session, session.begin():
        order = await session.get(Order, env.records.order.id)
        assert order is not None
        order.right_axis = None  # a cylinder without an axis cannot be made
    await _fails(env, "lab-work-ticket", {"orderId": env.records.order.id}, "without an axis")


async def test_no_ticket_for_a_cancelled_order(make_env: EnvFactory) -> None:
    env = await make_env()
    async with env.sessions() as session, session.begin():
        order = await session.get(Order, env.records.order.id)
        assert order is not None
        order.status = OrderStatus.CANCELLED
    await _fails(env, "lab-work-ticket", {"orderId": env.records.order.id}, "cancelled")


async def test_a_failed_record_removes_the_file(
    make_env: EnvFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = await make_env()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(env.generator, "_record", broken)
    with pytest.raises(RuntimeError):
        await generate_order_sheet(env.generator, env.records.order.id)
    assert env.files() == []


async def test_a_bad_outline_prints_the_box_instead(make_env: EnvFactory) -> None:
    env = await make_env()
    async with env.sessions() as session, session.begin():
        order = await session.get(Order, env.records.order.id)
        assert order is not None
        order.frame_outline = [[1, 2]]
    document = await generate_lab_work_ticket(env.generator, env.records.order.id)
    text = pdf_text((env.documents_dir / document.path).read_bytes())
    assert "no tracing attached" in text


async def test_paper_size_comes_from_the_owner(make_env: EnvFactory) -> None:
    env = await make_env()
    ticket = await generate_lab_work_ticket(env.generator, env.records.order.id)  # lab: Letter
    sheet = await generate_order_sheet(env.generator, env.records.order.id)  # practice: A4
    sizes = []
    for document in (ticket, sheet):
        reader = pypdf.PdfReader(env.documents_dir / document.path)
        sizes.append(round(float(reader.pages[0].mediabox.width)))
    assert sizes == [612, 595]


async def test_a_worker_starts_its_render_pool_so_the_first_document_is_not_a_cold_one(
    make_env: EnvFactory,
) -> None:
    """Reported: the first PDFs after start took 20-25 s (the pool started, at low
    priority, on the first job), later ones 0.2 s. The pool now starts with the worker:
    the first document after start takes about as long as a warm one (ratio measured
    side by side, never an absolute time)."""
    env = await make_env(pool=True)
    renderer = env.worker.generator.renderer
    assert isinstance(renderer, ProcessPoolRenderer)
    assert not renderer.started  # enqueuing alone never starts processes
    stop = asyncio.Event()
    worker = asyncio.create_task(run_workers(env.system, ["pdf"], env.registry, stop=stop))
    try:
        await eventually(lambda: renderer.ready, 60)
        times = []
        for _ in range(4):
            started = time.perf_counter()
            ref = await env.system.helpers.queue_order_sheet_pdf(env.records.order.id)
            await eventually(lambda ref=ref: _completed(env, ref.job_id), 60)
            times.append(time.perf_counter() - started)
    finally:
        stop.set()
        await worker
    first, warm = times[0], statistics.median(times[1:])
    assert first < 3 * warm, f"first document {first:.2f} s, warm ones {warm:.2f} s"


async def _completed(env: PdfEnv, job_id: str) -> bool:
    record = await env.system.local.get_job("pdf", job_id)
    return record is not None and record.state is JobState.COMPLETED
