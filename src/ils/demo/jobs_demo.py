"""``ils jobs demo``: every job type queued through its helper and run, on this machine.

Every job type runs its real handler; should one ever lack a handler, the demo
registers an echo handler for it (it logs the job's identifiers and completes) and
says so. Everything else is the real job system too: helpers with validation, the
transactional outbox (a committed and a rolled-back transaction), the
store of the configured mode, the runner with each queue's concurrency and limits.

Real handlers load what their job names from the database, so the demo first makes
the few records its jobs are about (a sample lab, practice, supplier and their order,
purchase order, connection request, briefing, invoice, examination, chat question and
tracing file; once, under fixed ids). They keep the platform's rules: the practice
orders from a lab it is connected to, the lab from a connected supplier, and the
pending connection request comes from a newcomer practice. The
e-mails then really go out: as ``.eml`` files under ``data_dir/mail`` by default.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import session_factory
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import AIResult, AIResultKind
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.orders import LensDesign, Order
from ils.domain.supply import (
    Product,
    ProductCategory,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
)
from ils.jobs.helpers import JobHelpers
from ils.jobs.model import COUNTED_STATES, JobRef, JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import register_all

DEMO_TIMEOUT_S = 300.0
DEMO_DAY = date(2026, 11, 28)
#: No password verifies against it: the sample users cannot sign in.
NO_SIGN_IN = "!sample-user-of-ils-jobs-demo"


@dataclass(frozen=True, slots=True)
class Samples:
    """Ids of the records the sample e-mail, PDF and notification jobs are about."""

    lab: str = "sample-lab"
    practice: str = "sample-practice"
    supplier: str = "sample-supplier"
    user: str = "sample-practice-user"
    lab_user: str = "sample-lab-user"
    order: str = "sample-order"
    purchase_order: str = "sample-po"
    connection: str = "sample-connection"
    newcomer: str = "sample-newcomer"


def _sample_rows(ids: Samples) -> list[list[Any]]:
    """The sample records, in insert order (each list one flush)."""
    lab = Company(
        id=ids.lab, kind=CompanyKind.LAB, name="Sample Lab (ils jobs demo)", email="lab@ils.example"
    )
    practice = Company(id=ids.practice, kind=CompanyKind.PRACTICE, name="Sample Practice")
    supplier = Company(
        id=ids.supplier, kind=CompanyKind.SUPPLIER, name="Sample Supplier", email="po@ils.example"
    )
    users = [
        User(id=ids.user, company_id=ids.practice, email="practice@ils.example",
             name="Sample Optometrist", password_hash=NO_SIGN_IN, role=Role.STAFF),
        User(id=ids.lab_user, company_id=ids.lab, email="lab-admin@ils.example",
             name="Sample Lab Admin", password_hash=NO_SIGN_IN, role=Role.ADMIN),
        Patient(id="sample-patient", company_id=ids.practice, reference="S-1",
                first_name="Sample", last_name="Patient"),
        Product(id="sample-product", company_id=ids.supplier, sku="LB-150", name="1.50 blank",
                category=ProductCategory.LENS_BLANK, unit_price_cents=900),
    ]  # fmt: skip
    work = [
        Order(id=ids.order, number="ORD-DEMO-000001", company_id=ids.practice, lab_id=ids.lab,
              patient_id="sample-patient", created_by=ids.user, right_sphere=Decimal("-1.25"),
              left_sphere=Decimal("-1.00"), lens_design=LensDesign.SINGLE_VISION,
              lens_index=Decimal("1.50"), tracking_number="1Z0000000000000001", carrier="UPS"),
        PurchaseOrder(id=ids.purchase_order, number="PO-DEMO-00001", company_id=ids.lab,
                      supplier_id=ids.supplier, status=PurchaseOrderStatus.SENT,
                      lines=[PurchaseOrderLine(product_id="sample-product", quantity=20,
                                               unit_price_cents=900)]),
        AIResult(company_id=ids.practice, kind=AIResultKind.BRIEFING, day=DEMO_DAY,
                 payload={"summary": "A quiet day: one order placed.",
                          "metrics": {"orders": 1}},
                 created_at=datetime(2026, 11, 28, 8, tzinfo=UTC)),
    ]  # fmt: skip
    return [[lab, practice, supplier], users, work]


async def ensure_samples(sessions: async_sessionmaker[AsyncSession]) -> Samples:
    """Make the sample records unless an earlier demo run made them."""
    ids = Samples()
    async with sessions() as session, session.begin():
        if await session.get(Company, ids.lab) is not None:
            return ids
        for rows in _sample_rows(ids):
            session.add_all(rows)
            await session.flush()
    return ids


#: The invoice (with a payment) and examination the sample PDF jobs render.
SAMPLE_INVOICE = "sample-invoice"
SAMPLE_EXAMINATION = "sample-examination"


async def ensure_marketplace_samples(
    sessions: async_sessionmaker[AsyncSession], ids: Samples
) -> None:
    """Connect the sample practice to the lab and the lab to the supplier (accepted:
    orders need it), and make the pending request of the connection e-mail a
    newcomer's, unless done already. A database of an older demo run held that request
    from the sample practice, whose order broke the rule; the row is moved over."""
    async with sessions() as session, session.begin():
        if await session.get(Company, ids.newcomer) is not None:
            return
        session.add(Company(id=ids.newcomer, kind=CompanyKind.PRACTICE, name="Sample Newcomer"))
        await session.flush()
        request = await session.get(Connection, ids.connection)
        if request is None:
            request = Connection(id=ids.connection)
            session.add(request)
        request.requester_id, request.target_id = ids.newcomer, ids.lab
        request.status = ConnectionStatus.PENDING
        request.message = "We would like to order from you."
        await session.flush()
        for requester_id, target_id in ((ids.practice, ids.lab), (ids.lab, ids.supplier)):
            session.add(
                Connection(
                    requester_id=requester_id,
                    target_id=target_id,
                    status=ConnectionStatus.ACCEPTED,
                    created_at=datetime(2026, 11, 1, 9, tzinfo=UTC),
                    decided_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
                )
            )


async def ensure_document_samples(sessions: async_sessionmaker[AsyncSession], ids: Samples) -> None:
    """Make the invoice and examination of the sample PDF jobs unless they exist
    (checked on their own: a database from an older demo run has the rest)."""
    from ils.domain.billing import Invoice, InvoiceLine, Payment, PaymentMethod, VatTreatment
    from ils.domain.clinical import Examination

    async with sessions() as session, session.begin():
        if await session.get(Invoice, SAMPLE_INVOICE) is not None:
            return
        lines = [
            InvoiceLine(position=0, description="Single vision lenses 1.50, pair", quantity=1,
                        unit_price_cents=4_500, vat_treatment=VatTreatment.STANDARD,
                        vat_rate_bp=2000),
            InvoiceLine(position=1, description="Dispensing", quantity=1, unit_price_cents=2_000,
                        vat_treatment=VatTreatment.EXEMPT, vat_rate_bp=0),
        ]  # fmt: skip
        session.add(
            Invoice(id=SAMPLE_INVOICE, number="INV-DEMO-00001", company_id=ids.lab,
                    customer_id=ids.practice, order_id=ids.order, issued_on=DEMO_DAY,
                    due_on=date(2026, 12, 28), lines=lines)
        )  # fmt: skip
        session.add(
            Examination(id=SAMPLE_EXAMINATION, company_id=ids.practice,
                        patient_id="sample-patient", examiner_id=ids.user,
                        examined_at=datetime(2026, 11, 27, 10, tzinfo=UTC), va_right="6/6",
                        va_left="6/6", right_sphere=Decimal("-1.25"),
                        left_sphere=Decimal("-1.00"), recommendations="Review in 2 years.")
        )  # fmt: skip
        await session.flush()
        session.add(
            Payment(invoice_id=SAMPLE_INVOICE, company_id=ids.lab, amount_cents=3_000,
                    method=PaymentMethod.CARD, received_at=datetime(2026, 11, 28, 12, tzinfo=UTC))
        )  # fmt: skip


#: The conversation, question and tracing file of the sample chat and OMA jobs.
SAMPLE_CONVERSATION = "sample-conversation"
SAMPLE_QUESTION = "sample-question"
SAMPLE_TRACING = "sample-tracing"
SAMPLE_SCHEDULE = "sample-schedule"


def sample_tracing(radius_mm: float = 25.0, points: int = 360) -> bytes:
    """A small DCS tracing file: a round lens of ``radius_mm``, both eyes, format 1."""
    radii = ";".join([str(round(radius_mm * 100))] * 10)
    data = ["REQ=FIL", "JOB=DEMO-1", "DO=B", f"CIRC={2 * 3.14159265 * radius_mm:.2f}"]
    for eye in ("R", "L"):
        data.append(f"TRCFMT=1;{points};E;{eye};F")
        data += [f"R={radii}"] * (points // 10)
    return ("\r\n".join(data) + "\r\n").encode("ascii")


async def ensure_ai_and_tracing_samples(
    settings: Settings, system: JobSystem, ids: Samples
) -> None:
    """Make the conversation, question, uploaded tracing file and schedule of the
    sample chat, OMA and schedule jobs unless they exist (a database from an older demo
    run has the rest)."""
    from ils.clock import utc_now
    from ils.domain.content import Conversation, Message, MessageRole, UploadedFile
    from ils.jobs.schedules.cron import ScheduleSpec
    from ils.jobs.schedules.store import Schedule, ScheduledJob, ScheduleStore
    from ils.storage.backends import open_storages

    sessions = session_factory(system.engine)
    async with sessions() as session, session.begin():
        if await session.get(Conversation, SAMPLE_CONVERSATION) is not None:
            return
        session.add(Conversation(id=SAMPLE_CONVERSATION, company_id=ids.practice, user_id=ids.user))
        await session.flush()
        session.add(
            Message(id=SAMPLE_QUESTION, conversation_id=SAMPLE_CONVERSATION,
                    role=MessageRole.USER, content="How many orders are overdue?")
        )  # fmt: skip
        stored = await open_storages(settings).uploads.put(
            f"{ids.lab}/{SAMPLE_TRACING}.oma", sample_tracing()
        )
        await ScheduleStore().save(
            session,
            Schedule(
                id=SAMPLE_SCHEDULE,
                name="Sample lab's briefing",
                spec=ScheduleSpec(cron="0 8 * * *", every_s=None, time_zone="Europe/London"),
                jobs=(ScheduledJob("ai", "daily-briefing", {"companyId": ids.lab,
                                                            "date": "{date}"}),),
                company_id=ids.lab,
            ),
            utc_now(system.clock),
        )  # fmt: skip
        session.add(
            UploadedFile(id=SAMPLE_TRACING, company_id=ids.lab, order_id=ids.order,
                         filename="demo.oma", content_type="application/vnd.vca-dcs",
                         size_bytes=stored.size_bytes, sha256=stored.sha256, path=stored.key,
                         uploaded_by=ids.lab_user)
        )  # fmt: skip


async def _echo(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Stand-in for a handler that does not exist yet: it records that it ran."""
    await ctx.log(f"demo echo handler ran {type(payload).__name__} (attempt {ctx.attempt})")
    return {"echo": True, "handler": "demo"}


async def queue_samples(helpers: JobHelpers, n: int, ids: Samples | None = None) -> list[JobRef]:
    """One job of every type in jobs.md that has a helper (``urgent-notification-email``
    is queued by the notification worker itself), each about the sample records."""
    day = DEMO_DAY.isoformat()
    ids = ids or Samples()
    return [
        await helpers.queue_order_confirmation_email(ids.order, ids.user),
        await helpers.queue_shipment_notification_email(ids.order, ids.user, f"1Z{n:08d}", "UPS"),
        await helpers.queue_purchase_order_email(ids.purchase_order, ids.supplier),
        await helpers.queue_marketplace_connection_email(ids.connection, ids.newcomer, ids.lab),
        await helpers.queue_general_notification_email(
            ids.user, "Lab closed Friday", "See you Monday."
        ),
        await helpers.queue_daily_briefing_email(ids.user, ids.practice, day),
        await helpers.queue_order_sheet_pdf(ids.order),
        await helpers.queue_invoice_pdf(SAMPLE_INVOICE),
        await helpers.queue_receipt_pdf(SAMPLE_INVOICE),
        await helpers.queue_lab_work_ticket_pdf(ids.order),
        await helpers.queue_examination_form_pdf(SAMPLE_EXAMINATION),
        await helpers.queue_system_notification(ids.user, "Maintenance", "Tonight 22:00", "high"),
        await helpers.queue_order_notification(
            ids.lab_user, ids.order, "in_production", "Surfacing"
        ),
        await helpers.queue_ai_insight_notification(
            ids.user, "forecast", "Demand up", "Single vision +12%"
        ),
        await helpers.queue_marketplace_notification(
            ids.lab_user, ids.connection, "request", "Sample Newcomer"
        ),
        await helpers.queue_daily_briefing(ids.lab, day),
        await helpers.queue_demand_forecast(ids.lab, 30),
        await helpers.queue_anomaly_detection(ids.lab, "revenue"),
        await helpers.queue_insight_generation(ids.lab, "revenue", "2026-11-01", "2026-11-27"),
        await helpers.queue_chat_response(
            ids.user, ids.practice, SAMPLE_CONVERSATION, SAMPLE_QUESTION
        ),
        await helpers.queue_oma_file(ids.order, SAMPLE_TRACING),
        await helpers.queue_schedule_run(SAMPLE_SCHEDULE, manual=True),
        await helpers.queue_cleanup_expired_data(),
    ]


async def _pending(system: JobSystem) -> int:
    stats = await system.monitor.stats()
    busy = (JobState.WAITING, JobState.ACTIVE, JobState.DELAYED, JobState.PAUSED)
    total = sum(int(stats[key][s.value]) for key in system.catalogue for s in busy)
    return total + await system.producer.outbox.pending()


async def run_demo(settings: Settings, rounds: int, console: Console) -> None:
    """Queue, run and report."""
    system = await JobSystem.open(settings)
    registry = HandlerRegistry(system.job_types)
    register_all(registry, system.worker_context())
    echoed = []
    for job_type in system.job_types:
        if registry.lookup(job_type.queue, job_type.name) is None:
            registry.register(job_type.model, _echo)
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
        sessions = session_factory(system.engine)
        samples = await ensure_samples(sessions)
        await ensure_marketplace_samples(sessions, samples)
        await ensure_document_samples(sessions, samples)
        await ensure_ai_and_tracing_samples(settings, system, samples)
        refs: list[JobRef] = []
        for n in range(rounds):
            refs += await queue_samples(system.helpers, n, samples)
        async with sessions() as session, session.begin():
            refs.append(
                await system.helpers.queue_order_notification(
                    samples.user,
                    samples.order,
                    "confirmed",
                    "Committed with its order",
                    session=session,
                )
            )
        async with sessions() as session:
            await system.helpers.queue_order_notification(
                samples.user, samples.order, "confirmed", "Never queued", session=session
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
        if not settings.smtp.configured:
            console.print(f"e-mails written as .eml files to {settings.mail_dir}")
        console.print(f"done in {time.monotonic() - started:.1f} s")
    finally:
        await runner.stop(0)
        await system.close()


async def _report(system: JobSystem) -> Table:
    stats = await system.monitor.stats()
    table = Table(title=f"queues after the demo ({stats['mode']} mode)")
    table.add_column("queue")
    for state in COUNTED_STATES:
        table.add_column(state.value, justify="right")
    for key in system.catalogue:
        table.add_row(key, *(str(stats[key][s.value]) for s in COUNTED_STATES))
    return table
