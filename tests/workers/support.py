"""What the e-mail worker tests share: a real SMTP server, a small lab network, waits.

``MailServer`` is an aiosmtpd handler run by aiosmtpd's ``Controller`` in its own
thread on 127.0.0.1 and a free port, so every test talks SMTP over a real socket.
Its behaviour is set per test: replies to DATA to hand out first (``451`` then
accept), recipients to refuse (``550``), and it records what it accepted and on
which connection (the client's port).
"""

from __future__ import annotations

import email
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils import testing
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import AIResult, AIResultKind
from ils.domain.mail import MailMessage
from ils.domain.marketplace import Connection
from ils.domain.orders import LensDesign, Order, OrderStatus, PrismBase
from ils.domain.supply import (
    Product,
    ProductCategory,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
)
from tests.conftest import free_port

# What no e-mail may ever contain: the patient's name and date of birth.
PATIENT_FIRST = "Zebedee"
PATIENT_LAST = "Quillfeather"
PATIENT_BIRTH = date(1961, 3, 14)
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
BRIEFING_DAY = date(2026, 11, 28)


@dataclass
class Received:
    """One message the server accepted."""

    peer_port: int
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool = False
    login: str | None = None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None, f"no text/{subtype} part"
        content = found.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")


@dataclass
class MailServer:
    """The aiosmtpd handler (runs in the controller's thread; state under a lock)."""

    data_replies: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0
    # Store the next N messages, then hang up instead of answering (a reply lost).
    hang_up_after_data: int = 0
    noops: int = 0
    quits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd calls handle_<COMMAND> hooks.

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        with self.lock:
            self.noops += 1
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            refusal = self.refused.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_commands += 1
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(
                Received(
                    peer_port=session.peer[1],
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=bytes(envelope.original_content),
                    tls=server.transport.get_extra_info("ssl_object") is not None,
                    login=session.auth_data if session.authenticated else None,
                )
            )
            if self.hang_up_after_data:
                self.hang_up_after_data -= 1
                server.transport.close()
            return "250 2.0.0 Ok: queued"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages() if address in m.rcpt_tos]


@dataclass
class RunningServer:
    """A started controller and its handler."""

    handler: MailServer
    controller: Controller
    port: int


def start_mail_server(handler: MailServer | None = None, **smtp_kwargs: Any) -> RunningServer:
    """A real SMTP server (``handler``, a plain :class:`MailServer` by default) on
    127.0.0.1 and a free port (stop its ``controller``)."""
    handler = handler or MailServer()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    return RunningServer(handler, controller, port)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 20.0
) -> None:
    """:func:`ils.testing.eventually` with the 20 s default these tests were written for
    (SMTP round trips, worker processes starting)."""
    await testing.eventually(check, timeout, interval=0.02, message="condition not met in time")


@dataclass
class Network:
    """The records the e-mails are about."""

    lab: Company
    practice: Company
    supplier: Company
    orderer: User
    lab_admin: User
    patient: Patient
    order: Order
    purchase_order: PurchaseOrder
    connection: Connection


async def build_network(sessions: async_sessionmaker[AsyncSession]) -> Network:
    """A lab, a practice with a patient and an order, a supplier with a PO, a pending
    connection request and the lab's briefing for ``BRIEFING_DAY``."""
    lab = Company(
        kind=CompanyKind.LAB,
        name="Clear View Lab",
        email="orders@clearview.example",
        address_line1="1 Lens Street",
        city="Leeds",
        postcode="LS1 1AA",
        phone="0113 000 0000",
        primary_color="#0a7c59",
        logo_text="CLEAR VIEW",
    )
    practice = Company(
        kind=CompanyKind.PRACTICE, name="Brightside Opticians", city="York", country="GB"
    )
    supplier = Company(
        kind=CompanyKind.SUPPLIER, name="Lens Supply Co", email="sales@lenssupply.example"
    )
    async with sessions() as session, session.begin():
        session.add_all([lab, practice, supplier])
        await session.flush()
        orderer = User(
            company_id=practice.id,
            email="ann@brightside.example",
            name="Ann Optom",
            password_hash="x",
            role=Role.STAFF,
        )
        lab_admin = User(
            company_id=lab.id,
            email="boss@clearview.example",
            name="Lab Boss",
            password_hash="x",
            role=Role.ADMIN,
        )
        patient = Patient(
            company_id=practice.id,
            reference="P-0042",
            first_name=PATIENT_FIRST,
            last_name=PATIENT_LAST,
            date_of_birth=PATIENT_BIRTH,
        )
        session.add_all([orderer, lab_admin, patient])
        await session.flush()
        order = Order(
            number="ORD-2026-000042",
            company_id=practice.id,
            lab_id=lab.id,
            patient_id=patient.id,
            created_by=orderer.id,
            status=OrderStatus.SUBMITTED,
            right_sphere=Decimal("-2.25"),
            right_cylinder=Decimal("-0.75"),
            right_axis=180,
            right_add=Decimal("2.00"),
            left_sphere=Decimal("1.50"),
            left_cylinder=Decimal("0"),
            left_add=Decimal("2.00"),
            left_prism=Decimal("1.00"),
            left_prism_base=PrismBase.IN,
            pd_binocular=Decimal("63.5"),
            seg_height_right=Decimal("18"),
            seg_height_left=Decimal("18"),
            lens_material="polycarbonate",
            lens_index=Decimal("1.60"),
            lens_design=LensDesign.PROGRESSIVE,
            coatings=["anti_reflective", "hard_coat"],
            frame_brand="Ray-Ban",
            frame_model="RB5154",
            frame_colour="tortoise",
            price_cents=12_950,
            due_date=date(2026, 12, 4),
        )
        blank = Product(
            company_id=supplier.id,
            sku="LB-160-PC",
            name="1.60 polycarbonate blank",
            category=ProductCategory.LENS_BLANK,
            unit_price_cents=1_250,
        )
        session.add_all([order, blank])
        await session.flush()
        po = PurchaseOrder(
            number="PO-2026-00007",
            company_id=lab.id,
            supplier_id=supplier.id,
            status=PurchaseOrderStatus.SENT,
            created_by=lab_admin.id,
            expected_on=date(2026, 12, 2),
            lines=[PurchaseOrderLine(product_id=blank.id, quantity=40, unit_price_cents=1_250)],
        )
        connection = Connection(
            requester_id=practice.id, target_id=lab.id, message=HOSTILE, requested_by=orderer.id
        )
        briefing = AIResult(
            company_id=lab.id,
            kind=AIResultKind.BRIEFING,
            day=BRIEFING_DAY,
            payload={
                "summary": "Orders are up 12% on last week.",
                "metrics": {"orders_received": 41, "orders_shipped": 37},
                "highlights": ["Progressive lenses lead", HOSTILE],
                "recommendations": ["Reorder 1.60 blanks"],
            },
            created_at=datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
        )
        session.add_all([po, connection, briefing])
    return Network(lab, practice, supplier, orderer, lab_admin, patient, order, po, connection)


async def mail_rows(sessions: async_sessionmaker[AsyncSession]) -> list[MailMessage]:
    """Every row of the message log, oldest first."""
    async with sessions() as session:
        return list(await session.scalars(select(MailMessage).order_by(MailMessage.created_at)))


@dataclass
class FakeContext:
    """A :class:`~ils.jobs.registry.JobContext` for calling a handler directly."""

    job_id: str
    queue: str = "email"
    attempt: int = 1
    store: str = "local"
    lines: list[str] = field(default_factory=list)
    progressed: list[Any] = field(default_factory=list)

    async def progress(self, value: Any) -> None:
        self.progressed.append(value)

    async def log(self, line: str, *, session: Any = None) -> None:
        self.lines.append(line)
