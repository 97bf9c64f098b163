"""The ``process-oma-file`` job on the real tracing files: stored, measured, attached.

The files are those of ``tests/data/oma`` (MIT licence, LICENSE.txt beside them).
Handlers run as the runner would call them, on SQLite and PostgreSQL, against the
network of ``tests.workers.support`` (its order ORD-2026-000042, right eye -2.25 /
-0.75 x 180, left +1.50, progressive).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.content import OrderTracing, TracingStatus, UploadedFile
from ils.domain.orders import Order
from ils.errors import PermanentJobError
from ils.jobs.model import JobRecord, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.storage import LocalFileStorage
from ils.workers import oma
from ils.workers.oma.records import OmaError
from ils.workers.pdf.data import LabTicketData
from ils.workers.pdf.load import load_lab_ticket
from ils.workers.pdf.ticket import render_lab_ticket
from tests.workers.support import FakeContext, Network, build_network

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"


@dataclass
class Env:
    system: JobSystem
    registry: HandlerRegistry
    sessions: async_sessionmaker[AsyncSession]
    network: Network
    storage: LocalFileStorage

    async def upload(self, data: bytes, *, order_id: str | None = None) -> str:
        """Store ``data`` as a file the lab uploaded for the order; its id."""
        order_id = order_id or self.network.order.id
        async with self.sessions() as session, session.begin():
            row = UploadedFile(
                company_id=self.network.lab.id,
                order_id=order_id,
                filename="tracing.oma",
                content_type="application/vnd.vca-dcs",
                size_bytes=len(data),
                sha256="0" * 64,
                path="pending",
                uploaded_by=self.network.lab_admin.id,
            )
            session.add(row)
            await session.flush()
            stored = await self.storage.put(f"{self.network.lab.id}/{row.id}.oma", data)
            row.path, row.sha256 = stored.key, stored.sha256
            return row.id

    async def run(self, file_id: str, job_id: str = "job-1") -> dict[str, Any]:
        job_type = self.system.job_types.get("oma", "process-oma-file")
        payload = job_type.model.model_validate(
            {"order_id": self.network.order.id, "file_id": file_id}
        )
        registration = self.registry.lookup("oma", "process-oma-file")
        assert registration is not None
        result: dict[str, Any] = await registration.handler(payload, FakeContext(job_id, "oma"))
        return result

    async def tracings(self) -> list[OrderTracing]:
        async with self.sessions() as session:
            return list(await session.scalars(select(OrderTracing)))

    async def order(self) -> Order:
        async with self.sessions() as session:
            order = await session.get(Order, self.network.order.id)
            assert order is not None
            return order

    async def jobs(self, queue: str, name: str) -> list[JobRecord]:
        found: list[JobRecord] = []
        for state in JobState:
            found += await self.system.local.list_jobs(queue, state, limit=1000)
        return [job for job in found if job.name == name]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    options: dict[str, Any] = {"data_dir": tmp_path / "var", "redis_url": None}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        options["database_url"] = url
    settings = Settings(_env_file=None, **options)
    system = await JobSystem.open(settings)
    registry = HandlerRegistry(system.job_types)
    oma.register(registry, system.worker_context())
    sessions = session_factory(system.engine)
    try:
        network = await build_network(sessions)
        yield Env(system, registry, sessions, network, LocalFileStorage(settings.uploads_dir))
    finally:
        await system.close()


async def test_a_real_file_is_measured_checked_and_attached(env: Env) -> None:
    file_id = await env.upload((DATA / "R1000_1.oma").read_bytes())
    result = await env.run(file_id)
    (row,) = await env.tracings()
    assert result["tracingId"] == row.id and result["eyes"] == ["L", "R"]
    assert row.file_id == file_id and row.job_id == "job-1"
    for eye in ("R", "L"):
        measured = row.measurements[eye]
        assert abs(measured["circumference_mm"] - 150.85) <= 0.1
        assert abs(measured["a_mm"] - 51.0) <= 0.1
    assert row.document is not None
    assert [label for label, _ in row.document].count("R") == 200
    # The outline goes on the order for the lab work ticket, which is drawn again.
    order = await env.order()
    assert order.frame_outline == row.outline and row.outline is not None
    assert len(await env.jobs("pdf", "lab-work-ticket")) == 1
    (note,) = await env.jobs("notification", "system-notification")
    assert note.data["userId"] == env.network.lab_admin.id
    assert "ORD-2026-000042" in note.data["title"]
    assert note.company_id == env.network.lab.id


async def test_a_retried_job_stores_one_result(env: Env) -> None:
    file_id = await env.upload((DATA / "R360_2.oma").read_bytes())
    first = await env.run(file_id)
    again = await env.run(file_id)
    assert first["tracingId"] == again["tracingId"]
    assert len(await env.tracings()) == 1
    assert len(await env.jobs("notification", "system-notification")) == 1


async def test_a_prescription_that_differs_from_the_order_is_an_error(env: Env) -> None:
    # R360_1 declares SPH=1.25;-0.50; the order says -2.25 (right) and +1.50 (left).
    file_id = await env.upload((DATA / "R360_1.oma").read_bytes())
    result = await env.run(file_id)
    (row,) = await env.tracings()
    assert row.status is TracingStatus.ERRORS and result["errors"] >= 2
    spheres = [f for f in row.findings if f["code"] == "rx_sphere_mismatch"]
    assert all(f["severity"] == "error" for f in spheres)
    assert sorted(f["message"].split(":")[0] for f in spheres) == ["left eye", "right eye"]
    # Once the order says the same, it matches.
    async with env.sessions() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == env.network.order.id)
            .values(
                right_sphere=Decimal("1.25"),
                right_cylinder=None,
                right_axis=None,
                left_sphere=Decimal("-0.50"),
                left_cylinder=None,
            )
        )
    await env.run(file_id, "job-2")
    newest = max(await env.tracings(), key=lambda r: r.created_at)
    assert not [f for f in newest.findings if f["severity"] == "error"], newest.findings


async def test_an_encoded_format_is_reported_not_guessed(env: Env) -> None:
    before = (await env.order()).frame_outline
    file_id = await env.upload((DATA / "TRCFMT6.oma").read_bytes())
    result = await env.run(file_id)
    (row,) = await env.tracings()
    assert result["eyes"] == [] and row.measurements == {}
    assert row.outline is None
    assert any("format 6" in f["message"] for f in row.findings), row.findings
    assert (await env.order()).frame_outline == before
    assert await env.jobs("pdf", "lab-work-ticket") == []


async def test_an_unreadable_file_fails_for_good_and_says_why(env: Env) -> None:
    file_id = await env.upload(b"REQ=FRM\r\nTRCFMT=1;360;E;R;F\r\nR=2500;2501\r\n")
    with pytest.raises(OmaError) as failure:
        await env.run(file_id)
    assert isinstance(failure.value, PermanentJobError)
    (row,) = await env.tracings()
    assert row.status is TracingStatus.UNREADABLE
    assert row.findings[0]["message"] == str(failure.value)
    (note,) = await env.jobs("notification", "system-notification")
    assert note.data["priority"] == "high"


async def test_a_file_of_another_order_is_refused(env: Env) -> None:
    async with env.sessions() as session, session.begin():
        other = Order(
            number="ORD-2026-000043",
            company_id=env.network.practice.id,
            lab_id=env.network.lab.id,
            patient_id=env.network.patient.id,
            lens_design=env.network.order.lens_design,
        )
        session.add(other)
    file_id = await env.upload((DATA / "R360_2.oma").read_bytes(), order_id=other.id)
    with pytest.raises(PermanentJobError, match="not uploaded for order"):
        await env.run(file_id)
    assert await env.tracings() == []


async def test_a_tracing_with_errors_never_becomes_the_orders_shape(env: Env) -> None:
    good = (DATA / "R360_2.oma").read_bytes()
    await env.run(await env.upload(good))
    shape = (await env.order()).frame_outline
    assert shape is not None
    async with env.sessions() as session:
        ticket_before = (await load_lab_ticket(session, env.network.order.id)).data
    # A 2 mm spike in the right eye's radii (line 4's first radius, 24.12 -> 26.12 mm).
    assert b"R=2412;" in good
    spiked = good.replace(b"R=2412;", b"R=2612;", 1)
    result = await env.run(await env.upload(spiked), "job-2")
    assert result["status"] == "errors"
    newest = max(await env.tracings(), key=lambda r: r.created_at)
    assert newest.status is TracingStatus.ERRORS
    assert [f["code"] for f in newest.findings if f["severity"] == "error"] == ["shape_spike"]
    # Stored with its findings, but the order keeps its shape, the ticket is not
    # drawn again, and what the next ticket would draw is the previous shape.
    assert (await env.order()).frame_outline == shape
    assert len(await env.jobs("pdf", "lab-work-ticket")) == 1
    async with env.sessions() as session:
        ticket_after = (await load_lab_ticket(session, env.network.order.id)).data
    assert isinstance(ticket_after, LabTicketData) and isinstance(ticket_before, LabTicketData)
    assert ticket_after.order.frame.outline == ticket_before.order.frame.outline
    assert ticket_after.order.frame.outline is not None
    # The lab is told why.
    notes = await env.jobs("notification", "system-notification")
    (told,) = [n for n in notes if "errors" in n.data["title"]]
    assert "keeps its previous shape" in told.data["message"]
    assert "spike" in told.data["message"] and told.data["priority"] == "high"


async def test_the_ticket_shows_holes_warnings_and_a_refused_tracing(env: Env) -> None:
    good = (DATA / "R360_2.oma").read_bytes()
    # A rimless job: one hole each side (B: the left one mirrored), and an HBOX that
    # differs from the measured 48.00 mm (a warning, so the shape is still used).
    extra = b"HBOX=49.00;49.00\r\nDRILLE=B;C;-18.00;2.00;1.40\r\n"
    await env.run(await env.upload(good.replace(b"TRCFMT=", extra + b"TRCFMT=", 1)))
    (row,) = await env.tracings()
    assert row.status is TracingStatus.WARNINGS, row.findings
    holes = [f["message"] for f in row.findings if f["code"] == "drill_hole"]
    assert holes == [
        "right eye: hole at x -18.00, y +2.00 mm (C), diameter 1.40 mm",
        "left eye: hole at x +18.00, y +2.00 mm (C), diameter 1.40 mm",
    ]
    shape = (await env.order()).frame_outline
    # Then a file that cannot be read at all.
    with pytest.raises(OmaError):
        await env.run(await env.upload(b"REQ=FRM\r\nTRCFMT=1;360;E;R;F\r\nR=2500\r\n"), "job-2")
    assert (await env.order()).frame_outline == shape
    async with env.sessions() as session:
        loaded = await load_lab_ticket(session, env.network.order.id)
    assert isinstance(loaded.data, LabTicketData)
    frame = loaded.data.order.frame
    assert frame.tracing_note is not None
    assert frame.tracing_note.startswith("tracing unreadable")
    # Both holes in the outline's frame (x nasal): the right's -18 is temporal, and
    # the left's +18 in the DCS frame is temporal for the left lens too.
    assert [(h.eye, h.x_mm, h.y_mm) for h in frame.holes] == [("R", -18.0, 2.0), ("L", -18.0, 2.0)]
    assert len(frame.tracing_warnings) == 2 and "HBOX" in frame.tracing_warnings[0]
    text = " ".join(
        (page.extract_text() or "")
        for page in PdfReader(BytesIO(render_lab_ticket(loaded.data))).pages
    )
    assert "tracing unreadable" in text and "no tracing attached" not in text
    assert "H1 R x -18.0 y +2.0 mm" in text and "H2 L x -18.0 y +2.0 mm" in text
    assert "Tracing warning: right eye: boxed width A" in text
