"""``ils jobs demo``: every job type queued through its helper and run, on this machine.

The handlers of most queues arrive in later releases, so the demo registers an echo
handler (it logs the job's identifiers and completes) for each job type that has no
real handler yet, and says so. Everything else is the real job system: helpers with
validation, the transactional outbox (a committed and a rolled-back transaction), the
store of the configured mode, the runner with each queue's concurrency and limits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ils.database import session_factory
from ils.queue.helpers import JobHelpers
from ils.queue.model import COUNTED_STATES, JobRef, JobState
from ils.queue.registry import HandlerRegistry, JobContext
from ils.queue.runner import Runner
from ils.queue.system import JobSystem
from ils.settings import Settings
from ils.workers import register_all

DEMO_TIMEOUT_S = 300.0


async def _echo(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Stand-in for a handler that does not exist yet: it records that it ran."""
    await ctx.log(f"demo echo handler ran {type(payload).__name__} (attempt {ctx.attempt})")
    return {"echo": True, "handler": "demo"}


async def queue_samples(helpers: JobHelpers, n: int) -> list[JobRef]:
    """One job of every type in jobs.md, with sample identifiers."""
    day = "2026-11-28"
    return [
        await helpers.queue_order_confirmation_email(f"ord-{n}", "usr-1"),
        await helpers.queue_shipment_notification_email(f"ord-{n}", "usr-1", f"1Z{n:08d}", "UPS"),
        await helpers.queue_purchase_order_email(f"po-{n}", "sup-1"),
        await helpers.queue_marketplace_connection_email(f"con-{n}", "cmp-1", "cmp-2"),
        await helpers.queue_general_notification_email(
            "usr-1", "Lab closed Friday", "See you Monday."
        ),
        await helpers.queue_daily_briefing_email("usr-1", "cmp-1", day),
        await helpers.queue_order_sheet_pdf(f"ord-{n}"),
        await helpers.queue_invoice_pdf(f"inv-{n}"),
        await helpers.queue_receipt_pdf(f"inv-{n}"),
        await helpers.queue_lab_work_ticket_pdf(f"ord-{n}"),
        await helpers.queue_examination_form_pdf(f"exm-{n}"),
        await helpers.queue_system_notification("usr-1", "Maintenance", "Tonight 22:00", "high"),
        await helpers.queue_order_notification("usr-1", f"ord-{n}", "in_production", "Surfacing"),
        await helpers.queue_ai_insight_notification(
            "usr-1", "forecast", "Demand up", "Single vision +12%"
        ),
        await helpers.queue_marketplace_notification(
            "usr-1", f"con-{n}", "request", "Clear View Lab"
        ),
        await helpers.queue_daily_briefing("cmp-1", day),
        await helpers.queue_demand_forecast("cmp-1", 30),
        await helpers.queue_anomaly_detection("cmp-1", "revenue"),
        await helpers.queue_insight_generation("cmp-1", "revenue", "2026-11-01", "2026-11-27"),
        await helpers.queue_chat_response(
            "usr-1", "cmp-1", f"cnv-{n}", "How many orders are overdue?"
        ),
        await helpers.queue_oma_file(f"ord-{n}", f"fil-{n}"),
    ]


async def _pending(system: JobSystem) -> int:
    stats = await system.stats()
    busy = (JobState.WAITING, JobState.ACTIVE, JobState.DELAYED, JobState.PAUSED)
    total = sum(int(stats[key][s.value]) for key in system.catalogue for s in busy)
    return total + await system.producer.outbox.pending()


async def run_demo(settings: Settings, rounds: int, console: Console) -> None:
    """Queue, run and report."""
    system = await JobSystem.open(settings)
    registry = HandlerRegistry(system.job_types)
    register_all(registry, system)
    echoed = []
    for job_type in system.job_types:
        if registry.lookup(job_type.queue, job_type.name) is None:
            registry.register(job_type.queue, job_type.name, _echo)
            echoed.append(f"{job_type.queue}/{job_type.name}")
    runner = Runner(
        system.stores(), list(system.catalogue.values()), registry, gates=system.gates()
    )
    try:
        console.print(
            f"[bold]ILS demo[/bold]: {system.mode} mode, database {settings.effective_database_url}"
        )
        if echoed:
            console.print(
                f"echo handlers stand in for {len(echoed)} job types without a real handler yet"
            )
        started = time.monotonic()
        refs: list[JobRef] = []
        for n in range(rounds):
            refs += await queue_samples(system.helpers, n)
        sessions = session_factory(system.engine)
        async with sessions() as session, session.begin():
            refs.append(
                await system.helpers.queue_order_notification(
                    "usr-1", "ord-tx", "confirmed", "Committed with its order", session=session
                )
            )
        async with sessions() as session:
            await system.helpers.queue_order_notification(
                "usr-1", "ord-rolled-back", "confirmed", "Never queued", session=session
            )
            await session.rollback()
        console.print(
            f"queued {len(refs)} jobs (+1 in a rolled-back transaction, not queued) "
            f"in {1000 * (time.monotonic() - started):.0f} ms"
        )
        system.start_background()
        runner.start()
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while await _pending(system) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        await runner.stop(settings.shutdown_grace_s)
        console.print(await _report(system))
        console.print(f"done in {time.monotonic() - started:.1f} s")
    finally:
        await runner.stop(0)
        await system.close()


async def _report(system: JobSystem) -> Table:
    stats = await system.stats()
    table = Table(title=f"queues after the demo ({stats['mode']} mode)")
    table.add_column("queue")
    for state in COUNTED_STATES:
        table.add_column(state.value, justify="right")
    for key in system.catalogue:
        table.add_row(key, *(str(stats[key][s.value]) for s in COUNTED_STATES))
    return table
