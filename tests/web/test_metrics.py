"""``GET /metrics``: store-wide job counts and this process's worker figures."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ils.errors import PermanentJobError
from ils.jobs.job_types import InvoicePdf, OrderSheetPdf
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.testing import eventually
from ils.web.state import WebState


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_count_jobs_by_state_and_what_workers_did(
    client: httpx.AsyncClient, state: WebState
) -> None:
    system = state.system
    helpers = system.helpers
    await helpers.queue_order_sheet_pdf("order-1")
    await helpers.queue_order_sheet_pdf("order-2")
    await helpers.queue_invoice_pdf("invoice-1")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    before = samples(response.text)
    assert value(before, "ils_jobs", queue="pdf", state="waiting") == 3
    assert value(before, "ils_jobs", queue="email", state="waiting") == 0
    assert value(before, "ils_fallback_in_use") == 0

    async def sheet(payload: Any, ctx: Any) -> dict[str, bool]:
        await asyncio.sleep(0.02)
        return {"ok": True}

    async def invoice(payload: Any, ctx: Any) -> None:
        raise PermanentJobError("no lines")

    registry = HandlerRegistry(system.job_types)
    registry.register(OrderSheetPdf, sheet)
    registry.register(InvoicePdf, invoice)
    runner = Runner(
        system.stores(),
        [system.catalogue["pdf"]],
        registry,
        listeners=[system.metrics.observe],
    )
    counts: dict[str, int] = {}

    async def all_ran() -> bool:
        counts.update(await system.monitor.counts("pdf"))
        return counts["completed"] == 2 and counts["failed"] == 1

    runner.start()
    try:
        await eventually(
            all_ran,
            10.0,
            interval=0.02,
            message=lambda: f"wanted 2 completed and 1 failed pdf jobs in 10 s: {counts}",
        )
    finally:
        await runner.stop(5)

    after = samples((await client.get("/metrics")).text)
    assert value(after, "ils_jobs", queue="pdf", state="waiting") == 0
    assert value(after, "ils_jobs", queue="pdf", state="completed") == 2
    assert value(after, "ils_jobs", queue="pdf", state="failed") == 1
    assert value(after, "ils_jobs_completed_total", queue="pdf") == 2
    assert value(after, "ils_jobs_failed_total", queue="pdf", final="true") == 1
    assert value(after, "ils_job_processing_seconds_count", queue="pdf") == 3
    # Two handlers slept 20 ms each.
    assert value(after, "ils_job_processing_seconds_sum", queue="pdf") >= 0.04
    assert value(after, "ils_job_start_delay_seconds_count", queue="pdf") == 3
    # No ids or payload text in the exposition.
    assert not re.search(r"order-1|invoice-1", (await client.get("/metrics")).text)
