"""``/api/orders/{id}/tracing``: upload a tracing file, and read what the worker found.

Uses the real tracing files of ``tests/data/oma`` (MIT licence, LICENSE.txt
beside them). On SQLite and PostgreSQL with workers off; the round trip starts the
oma queue's runner itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from ils.domain.companies import CompanyKind, Role
from ils.domain.content import UploadedFile
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.web.state import WebState
from ils.workers import oma
from tests.web.api_support import World, all_jobs, count, order_world, place, queued
from tests.web.conftest import DbMaker, Factory, SignedIn
from tests.workers.support import eventually

DATA: Final = Path(__file__).resolve().parents[1] / "data" / "oma"
PRACTICE, LAB, SUPPLIER = CompanyKind.PRACTICE, CompanyKind.LAB, CompanyKind.SUPPLIER


@pytest.fixture
async def world(factory: Factory, signed_in: SignedIn) -> World:
    return await order_world(factory, signed_in)


def tracing_file(name: str = "R1000_1.oma") -> bytes:
    return (DATA / name).read_bytes()


def stored_files(state: WebState) -> list[Path]:
    root = state.settings.uploads_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_stores_the_file_and_queues_its_job(
    world: World, state: WebState, db: DbMaker
) -> None:
    order = await place(world)
    lab_tech = world.client(LAB, Role.LAB_TECH)
    data = tracing_file()
    response = await lab_tech.post(
        f"/api/orders/{order['id']}/tracing",
        params={"filename": "frame 1559.oma"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["file"]["filename"] == "frame 1559.oma"
    assert body["file"]["size_bytes"] == len(data)
    assert body["file"]["order_id"] == order["id"]
    (job,) = await queued(state, "oma", "process-oma-file")
    assert job.data == {
        "type": "process-oma-file",
        "orderId": order["id"],
        "fileId": body["file"]["id"],
    }
    assert job.company_id == world.lab.id
    (path,) = stored_files(state)
    assert path.read_bytes() == data
    # The practice may upload too.
    practice = world.client(PRACTICE)
    again = await practice.post(f"/api/orders/{order['id']}/tracing", content=data)
    assert again.status_code == 202
    assert await count(db, UploadedFile) == 2


async def test_not_a_tracing_file_is_refused_and_nothing_is_stored(
    world: World, state: WebState, db: DbMaker
) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/tracing"
    staff = world.client(LAB)
    before = await all_jobs(state)
    for junk in (
        b"ea3\x03\x00\x00\x00\x00\x17vTIT2",  # Sony OpenMG audio, also .oma
        b"\x00\x01\x02binary\xff\xfe",
        # A packed (binary) tracing late in the file is refused as one early in it.
        b"REQ=FRM\r\n" + b"DBL=15\r\n" * 400 + b"TRCFMT=4;360;E;R;F\r\nR=\x00\x07\x01\r\n",
        b"just some text\nwithout records\n",
        b"",
    ):
        response = await staff.post(path, content=junk)
        assert response.status_code == 415, junk
        assert "not a lens-tracing file" in response.json()["detail"]
    too_big = b"REQ=FRM\r\n" + b"R=" + b"1;" * 600_000
    response = await staff.post(path, content=too_big)
    assert response.status_code == 413
    response = await staff.post(path, params={"filename": "../../etc/passwd"}, content=b"A=1")
    assert response.status_code == 422
    assert await count(db, UploadedFile) == 0
    assert stored_files(state) == []
    assert await all_jobs(state) == before


async def test_only_the_orders_two_sides_may_upload_or_read(
    world: World, state: WebState, signed_in: SignedIn
) -> None:
    order = await place(world)
    path = f"/api/orders/{order['id']}/tracing"
    data = tracing_file()
    stranger, _ = await signed_in(Role.ADMIN, LAB)
    assert (await stranger.post(path, content=data)).status_code == 404
    assert (await stranger.get(path)).status_code == 404
    assert (await world.client(SUPPLIER).post(path, content=data)).status_code == 403
    # The practice's lab_tech (an odd role there) may not upload, but may read.
    assert (await world.client(PRACTICE, Role.LAB_TECH).post(path, content=data)).status_code == 403
    assert (await world.client(PRACTICE).get(path)).status_code == 404  # nothing processed yet
    assert stored_files(state) == []


async def test_the_worker_attaches_the_tracing_to_the_order(world: World, state: WebState) -> None:
    order = await place(world, frame={"brand": "Silhouette", "box_a": 51, "box_b": 40, "dbl": 15})
    lab = world.client(LAB)
    path = f"/api/orders/{order['id']}/tracing"
    assert (await lab.post(path, content=tracing_file())).status_code == 202
    await queued(state, "oma")
    registry = HandlerRegistry(state.system.job_types)
    oma.register(registry, state.system.worker_context())
    runner = Runner(state.system.stores(), [state.system.catalogue["oma"]], registry)
    runner.start()
    try:

        async def processed() -> bool:
            return (await lab.get(path)).status_code == 200

        await eventually(processed, timeout=15)
    finally:
        await runner.stop(5)
    tracing = (await world.client(PRACTICE).get(path)).json()
    assert tracing["status"] in ("ok", "warnings")
    right = tracing["measurements"]["R"]
    assert abs(right["circumference_mm"] - 150.85) <= 0.1
    assert abs(right["a_mm"] - 51.0) <= 0.1
    assert len(tracing["outline"]) >= 8
    labels = [record[0] for record in tracing["document"]]
    assert labels.count("TRCFMT") == 2 and "CIRC" in labels
    # The lab work ticket is drawn again with the traced shape.
    tickets = await queued(state, "pdf", "lab-work-ticket")
    assert len(tickets) == 2  # at order time, and after the tracing
