"""Records to document data: the only module of the worker that reads domain rows.

Each loader reads one subject (by the id the job carries) and what it hangs off, and
returns plain values (:mod:`ils.workers.pdf.data`) plus who owns the document. What
a document must not be made from fails here with :class:`DocumentDataError`, before
anything is rendered or stored: a deleted record, an invoice without lines, a
cylinder without an axis.

Owners (whose users may download): the order sheet belongs to the practice that
ordered, the work ticket to the lab making the job, invoices and receipts to the lab
that issued them, the examination form to the practice.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from ils.domain import sight_test
from ils.domain.billing import Invoice, InvoiceTotals
from ils.domain.clinical import Examination, Patient
from ils.domain.companies import Company, zone_named
from ils.domain.orders import Order, OrderStatus
from ils.domain.records import read_fields
from ils.workers.pdf.data import (
    DocumentData,
    DocumentKind,
    DocumentMeta,
    ExaminationData,
    EyeExamination,
    EyePrescription,
    FrameSpec,
    InvoiceData,
    InvoiceFacts,
    InvoiceLineData,
    LabTicketData,
    LensSpec,
    Letterhead,
    OrderFacts,
    OrderSheetData,
    PaymentData,
    ReceiptData,
    SightTestRecord,
    VatRateData,
)
from ils.workers.pdf.errors import DocumentDataError
from ils.workers.pdf.shape import clean_outline
from ils.workers.pdf.ticket_tracing import ticket_tracing

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Model = TypeVar("Model")
Value = TypeVar("Value", bound="DataclassInstance")

#: The column of ``documents`` that links each kind to its subject.
SUBJECT_COLUMN: dict[DocumentKind, str] = {
    DocumentKind.ORDER_SHEET: "order_id",
    DocumentKind.LAB_WORK_TICKET: "order_id",
    DocumentKind.INVOICE: "invoice_id",
    DocumentKind.RECEIPT: "invoice_id",
    DocumentKind.EXAMINATION_FORM: "examination_id",
}


@dataclass(frozen=True, slots=True)
class Loaded:
    """A subject ready to render, and where its document belongs."""

    data: DocumentData
    company_id: str
    #: The printed number, for the download name (``ORD-2026-000042``).
    number: str
    time_zone: str


def local_time(moment: datetime, time_zone: str) -> str:
    """``28 Nov 2026 14:03 GMT`` in the company's zone."""
    local = moment.astimezone(zone_named(time_zone))
    return f"{local.day} {local:%b %Y %H:%M %Z}".strip()


def local_day(moment: datetime, time_zone: str) -> date:
    """The company's calendar day of ``moment``."""
    return moment.astimezone(zone_named(time_zone)).date()


def from_attrs(kind: type[Value], source: object, *, prefix: str = "", **given: Any) -> Value:
    """``kind`` (a dataclass of :mod:`~ils.workers.pdf.data`) read from a record as
    pydantic's ``from_attributes`` reads one: each field from the attribute of the same
    name (after ``prefix``: ``frame_`` for an order's frame columns), except the fields
    ``given`` (derived or renamed values). A field the record has no column for keeps
    its default (the frame's tracing facts, added from the tracing afterwards). Where a
    document prints a record's columns under their own names, they are named once, in
    the dataclass."""
    names = [f.name for f in fields(kind) if hasattr(source, prefix + f.name)]
    return kind(**read_fields(source, names, prefix=prefix, given=given))


def letterhead(company: Company) -> Letterhead:
    """A company's header block."""
    place = " ".join(v for v in (company.city, company.postcode) if v)
    lines = tuple(
        v for v in (company.address_line1, company.address_line2, place, company.country) if v
    )
    return from_attrs(Letterhead, company, address_lines=lines, paper_size=company.paper_size.value)


def address(company: Company) -> tuple[str, ...]:
    """Address lines without the name."""
    return letterhead(company).address_lines


def patient_reference(patient: Patient) -> str:
    """The practice's reference, or one derived from the record id (never the name)."""
    return patient.reference or f"P-{patient.id[:8].upper()}"


async def _subject(
    session: AsyncSession, model: type[Model], row_id: str, what: str, *related: Any
) -> Model:
    """A document's subject with what it hangs off (``related``: relationships loaded
    with it); a subject that is gone is a :class:`DocumentDataError`, never rendered."""
    row = await session.get(model, row_id, options=[selectinload(r) for r in related])
    if row is None:
        raise DocumentDataError(f"{what} {row_id} not found (deleted?)")
    return row


async def _order(session: AsyncSession, order_id: str) -> Order:
    return await _subject(
        session, Order, order_id, "order", Order.company, Order.lab, Order.patient
    )


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _eye(order: Order, side: str) -> EyePrescription:
    cylinder = getattr(order, f"{side}_cylinder")
    axis = getattr(order, f"{side}_axis")
    prism = getattr(order, f"{side}_prism")
    base = getattr(order, f"{side}_prism_base")
    if cylinder not in (None, 0) and axis is None:
        raise DocumentDataError(f"order {order.id}: {side} cylinder without an axis")
    if prism not in (None, 0) and base is None:
        raise DocumentDataError(f"order {order.id}: {side} prism without a base direction")
    return from_attrs(
        EyePrescription,
        order,
        prefix=f"{side}_",
        prism_base=_value(base),
        prism_vertical_base=_value(getattr(order, f"{side}_prism_vertical_base")),
        pd=getattr(order, f"pd_{side}"),
        height=getattr(order, f"seg_height_{side}"),
    )


def _order_facts(order: Order) -> OrderFacts:
    return OrderFacts(
        number=order.number,
        status=order.status.value,
        ordered_on=local_day(order.created_at, order.company.time_zone),
        due_date=order.due_date,
        practice_name=order.company.name,
        lab_name=order.lab.name,
        patient_reference=patient_reference(order.patient),
        right=_eye(order, "right"),
        left=_eye(order, "left"),
        pd_binocular=order.pd_binocular,
        lens=LensSpec(
            design=order.lens_design.value,
            material=_value(order.lens_material),
            index=order.lens_index,
            coatings=tuple(str(c) for c in order.coatings or ()),
            tint=_value(order.tint),
        ),
        frame=from_attrs(
            FrameSpec, order, prefix="frame_", outline=clean_outline(order.frame_outline)
        ),
        price_cents=order.price_cents,
        notes=order.notes,
    )


async def load_order_sheet(session: AsyncSession, order_id: str) -> Loaded:
    """The practice's order sheet."""
    order = await _order(session, order_id)
    data = OrderSheetData(letterhead(order.company), _order_facts(order), address(order.lab))
    return Loaded(data, order.company_id, order.number, order.company.time_zone)


async def load_lab_ticket(session: AsyncSession, order_id: str) -> Loaded:
    """The lab's work ticket (not for a cancelled order: nothing is to be made)."""
    order = await _order(session, order_id)
    if order.status == OrderStatus.CANCELLED:
        raise DocumentDataError(f"order {order_id} is cancelled: no work ticket")
    facts = _order_facts(order)
    # Issue 20 (lens tracing): a refused tracing's note, warnings and drill holes.
    traced = await ticket_tracing(session, order.id)
    frame = replace(
        facts.frame, tracing_note=traced.note, tracing_warnings=traced.warnings, holes=traced.holes
    )
    data = LabTicketData(letterhead(order.lab), replace(facts, frame=frame))
    return Loaded(data, order.lab_id, order.number, order.lab.time_zone)


async def _invoice(session: AsyncSession, invoice_id: str) -> Invoice:
    invoice = await _subject(
        session, Invoice, invoice_id, "invoice", Invoice.company, Invoice.customer, Invoice.order
    )
    if not invoice.lines:
        raise DocumentDataError(f"invoice {invoice_id} has no lines")
    return invoice


def vat_rates(totals: InvoiceTotals) -> tuple[VatRateData, ...]:
    """The VAT analysis as printed, from the totals ``ils.domain.billing`` computed.

    Shared with the sample invoice, so the bench and the tests render rates made the
    way a real invoice's are.
    """
    return tuple(
        VatRateData(r.vat_treatment.value, r.vat_rate_bp, r.net_cents, r.vat_cents, r.gross_cents)
        for r in totals.rates
    )


def _invoice_facts(invoice: Invoice) -> InvoiceFacts:
    try:
        totals = invoice.totals()
    except ValueError as exc:
        raise DocumentDataError(f"invoice {invoice.id}: {exc}") from None
    time_zone = invoice.company.time_zone
    return InvoiceFacts(
        number=invoice.number,
        status=invoice.status.value,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        currency=invoice.currency,
        payment_terms_days=invoice.payment_terms_days,
        customer_name=invoice.customer.name,
        customer_address=address(invoice.customer),
        customer_vat_number=invoice.customer.vat_number,
        order_number=invoice.order.number if invoice.order is not None else None,
        lines=tuple(
            InvoiceLineData(
                description=line.description,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                vat_treatment=line.vat_treatment.value,
                vat_rate_bp=line.vat_rate_bp,
                net_cents=line.quantity * line.unit_price_cents,
            )
            for line in invoice.lines
        ),
        rates=vat_rates(totals),
        net_cents=totals.net_cents,
        vat_cents=totals.vat_cents,
        gross_cents=totals.gross_cents,
        payments=tuple(
            PaymentData(
                received_on=local_day(p.received_at, time_zone),
                method=p.method.value,
                amount_cents=p.amount_cents,
                reference=p.reference,
            )
            for p in invoice.payments
        ),
    )


async def load_invoice(session: AsyncSession, invoice_id: str) -> Loaded:
    """The invoice as issued by the lab."""
    invoice = await _invoice(session, invoice_id)
    data = InvoiceData(letterhead(invoice.company), _invoice_facts(invoice))
    return Loaded(data, invoice.company_id, invoice.number, invoice.company.time_zone)


async def load_receipt(session: AsyncSession, invoice_id: str) -> Loaded:
    """The receipt of the invoice's latest payment."""
    invoice = await _invoice(session, invoice_id)
    if not invoice.payments:
        raise DocumentDataError(f"invoice {invoice_id} has no payments: no receipt")
    facts = _invoice_facts(invoice)
    count = len(facts.payments)
    number = f"RCT-{invoice.number}-{count}"
    data = ReceiptData(letterhead(invoice.company), facts, number, facts.payments[-1])
    return Loaded(data, invoice.company_id, number, invoice.company.time_zone)


async def load_examination_form(session: AsyncSession, examination_id: str) -> Loaded:
    """The practice's clinical record of the examination."""
    exam = await _subject(
        session,
        Examination,
        examination_id,
        "examination",
        Examination.patient,
        Examination.examiner,
    )
    company = await session.get(Company, exam.company_id)
    if company is None or exam.patient.company_id != exam.company_id:
        raise DocumentDataError(f"examination {examination_id}: patient of another practice")

    acuity = exam.acuity or {}
    fundus = exam.ophthalmoscopy or {}

    def eye(side: str, suffix: str) -> EyeExamination:
        seen = _block(acuity.get(side))
        return from_attrs(
            EyeExamination,
            exam,
            prefix=f"{side}_",
            unaided_distance=_text(seen.get("unaided_distance")),
            aided_distance=_text(seen.get("aided_distance")),
            unaided_near=_text(seen.get("unaided_near")),
            aided_near=_text(seen.get("aided_near")),
            fundus=_labelled(_block(fundus.get(side)), sight_test.OPHTHALMOSCOPY),
            acuity=getattr(exam, f"va_{suffix}"),
            iop=getattr(exam, f"iop_{suffix}"),
        )

    reference = f"EX-{exam.id[:8].upper()}"
    patient = exam.patient
    data = ExaminationData(
        letterhead=letterhead(company),
        reference=reference,
        examined_at=local_time(exam.examined_at, company.time_zone),
        examiner_name=exam.examiner.name if exam.examiner is not None else None,
        patient_name=f"{patient.first_name} {patient.last_name}",
        patient_reference=patient.reference,
        patient_birth_date=patient.date_of_birth,
        right=eye("right", "right"),
        left=eye("left", "left"),
        slit_lamp_notes=exam.slit_lamp_notes,
        fundus_notes=exam.fundus_notes,
        recommendations=exam.recommendations,
        sight_test=SightTestRecord(
            history=_labelled(exam.history or {}, sight_test.HISTORY),
            binocular_acuity=_labelled(_block(acuity.get("binocular")), sight_test.ACUITY),
            binocular_vision=_labelled(exam.binocular_vision or {}, sight_test.BINOCULAR_VISION),
            ophthalmoscopy_method=_words(fundus.get("method")),
            outcome=None if exam.outcome is None else sight_test.outcome_label(exam.outcome),
            referral_reason=exam.referral_reason,
            recall_date=exam.recall_date,
            optometrist_name=exam.optometrist_name,
            goc_number=exam.goc_number,
        ),
    )
    return Loaded(data, exam.company_id, reference, company.time_zone)


def _block(value: object) -> dict[str, object]:
    """A JSON block of the sight test, or an empty one for anything else."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _words(value: object) -> str | None:
    return None if value is None else str(value).replace("_", " ")


def _labelled(
    block: dict[str, object], fields: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``(label, text)`` of the fields recorded, in the form's order."""
    return tuple((label, str(block[key])) for key, label in fields if block.get(key) is not None)


LOADERS = {
    DocumentKind.ORDER_SHEET: load_order_sheet,
    DocumentKind.LAB_WORK_TICKET: load_lab_ticket,
    DocumentKind.INVOICE: load_invoice,
    DocumentKind.RECEIPT: load_receipt,
    DocumentKind.EXAMINATION_FORM: load_examination_form,
}


def generated_at(now_ms: int, time_zone: str) -> str:
    """The footer's generation time in the owner's zone."""
    return local_time(datetime.fromtimestamp(now_ms / 1000, UTC), time_zone)


def with_meta(data: DocumentData, meta: DocumentMeta) -> DocumentData:
    """``data`` with its footer facts set (the version is known only at store time)."""
    return replace(data, meta=meta)
