"""What each document prints, as plain frozen dataclasses.

The handler loads records in the event loop (async database access) and turns them
into these values; the render process gets them pickled. Nothing here touches the
database or holds ORM objects, so a render process needs no connection and a
document can be rendered again from the same values (tests, bench/pdf.py).

Money is integer minor units, optical values ``Decimal`` as stored, dates already in
the owning company's time zone: the renderer formats and draws, it decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class DocumentKind(StrEnum):
    """The kinds of generated document (``documents.kind``)."""

    ORDER_SHEET = "order_sheet"
    LAB_WORK_TICKET = "lab_work_ticket"
    INVOICE = "invoice"
    RECEIPT = "receipt"
    EXAMINATION_FORM = "examination_form"


@dataclass(frozen=True, slots=True)
class Letterhead:
    """The company a document is issued by: its header on every page, and its paper."""

    name: str
    address_lines: tuple[str, ...] = ()
    vat_number: str | None = None
    email: str | None = None
    phone: str | None = None
    #: ``#rrggbb``; ILS blue when unset or malformed.
    primary_color: str | None = None
    #: A short word mark drawn in place of a logo.
    logo_text: str | None = None
    #: ``A4`` or ``Letter``.
    paper_size: str = "A4"


@dataclass(frozen=True, slots=True)
class DocumentMeta:
    """What the footer says about this copy: version and when it was made."""

    version: int = 1
    #: Already formatted in the issuer's time zone, e.g. ``28 Nov 2026 14:03 GMT``.
    generated_at: str = ""


@dataclass(frozen=True, slots=True)
class EyePrescription:
    """One eye's prescription as a lab makes it (``None``: not given)."""

    sphere: Decimal | None = None
    cylinder: Decimal | None = None
    axis: int | None = None
    add: Decimal | None = None
    prism: Decimal | None = None
    prism_base: str | None = None
    #: A compound prism's vertical component (``prism`` is then the horizontal one).
    prism_vertical: Decimal | None = None
    prism_vertical_base: str | None = None
    #: Monocular PD, mm.
    pd: Decimal | None = None
    #: Segment or fitting height, mm.
    height: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LensSpec:
    """The lens ordered: material, index, design, treatments."""

    design: str
    material: str | None = None
    index: Decimal | None = None
    coatings: tuple[str, ...] = ()
    tint: str | None = None


@dataclass(frozen=True, slots=True)
class DrawnHole:
    """A drill hole for the ticket: ``x_mm`` towards the nose, ``y_mm`` up, from the
    lens's boxing centre (the outline's frame), ``diameter_mm`` across."""

    eye: str
    x_mm: float
    y_mm: float
    diameter_mm: float


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """The frame and its boxed measurements (mm), with the traced shape if any.

    ``outline`` is the right lens's shape: ``(x, y)`` millimetres around its boxing
    centre, x towards the nose, y up, as seen from the front (the interface of
    ``orders.frame_outline``); the left lens is drawn as its mirror image.
    """

    brand: str | None = None
    model: str | None = None
    colour: str | None = None
    box_a: Decimal | None = None
    box_b: Decimal | None = None
    dbl: Decimal | None = None
    ed: Decimal | None = None
    outline: tuple[tuple[float, float], ...] | None = None
    # Tracing facts for the work ticket (issue 20, lens tracing; see ticket_tracing):
    # a note when the newest tracing was refused, its warnings, its drill holes.
    tracing_note: str | None = None
    tracing_warnings: tuple[str, ...] = ()
    holes: tuple[DrawnHole, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What an order sheet and a work ticket share."""

    number: str
    status: str
    ordered_on: date
    due_date: date | None
    practice_name: str
    lab_name: str
    #: The practice's patient reference; never a name.
    patient_reference: str
    right: EyePrescription
    left: EyePrescription
    pd_binocular: Decimal | None
    lens: LensSpec
    frame: FrameSpec
    price_cents: int | None = None
    currency: str = "GBP"
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class OrderSheetData:
    """The practice's record of what it ordered from the lab."""

    letterhead: Letterhead
    order: OrderFacts
    #: The lab's address, as the supplier of the order.
    lab_address: tuple[str, ...] = ()
    meta: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True, slots=True)
class LabTicketData:
    """The work ticket travelling with the job through the lab."""

    letterhead: Letterhead
    order: OrderFacts
    meta: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True, slots=True)
class InvoiceLineData:
    """A printed invoice line; ``net_cents`` is quantity times unit price."""

    description: str
    quantity: int
    unit_price_cents: int
    vat_treatment: str
    vat_rate_bp: int
    net_cents: int


@dataclass(frozen=True, slots=True)
class VatRateData:
    """The lines of one VAT treatment and rate, summed (the VAT analysis)."""

    vat_treatment: str
    vat_rate_bp: int
    net_cents: int
    vat_cents: int
    gross_cents: int


@dataclass(frozen=True, slots=True)
class PaymentData:
    """A payment received against the invoice."""

    received_on: date
    method: str
    amount_cents: int
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """An invoice with its totals computed by ``ils.domain.billing``."""

    number: str
    status: str
    issued_on: date
    due_on: date
    currency: str
    payment_terms_days: int
    customer_name: str
    customer_address: tuple[str, ...]
    customer_vat_number: str | None
    order_number: str | None
    lines: tuple[InvoiceLineData, ...]
    rates: tuple[VatRateData, ...]
    net_cents: int
    vat_cents: int
    gross_cents: int
    payments: tuple[PaymentData, ...] = ()

    @property
    def paid_cents(self) -> int:
        """Sum of the payments."""
        return sum(payment.amount_cents for payment in self.payments)

    @property
    def balance_cents(self) -> int:
        """What is still owed (negative: a credit)."""
        return self.gross_cents - self.paid_cents


@dataclass(frozen=True, slots=True)
class InvoiceData:
    """An invoice as issued by the lab."""

    letterhead: Letterhead
    invoice: InvoiceFacts
    meta: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """The receipt of the latest payment against an invoice, and the balance left."""

    letterhead: Letterhead
    invoice: InvoiceFacts
    #: ``RCT-<invoice number>-<n>``: the n-th payment of that invoice.
    receipt_number: str
    payment: PaymentData
    meta: DocumentMeta = field(default_factory=DocumentMeta)


@dataclass(frozen=True, slots=True)
class EyeExamination:
    """One eye's findings."""

    acuity: str | None = None
    sphere: Decimal | None = None
    cylinder: Decimal | None = None
    axis: int | None = None
    add: Decimal | None = None
    k1: Decimal | None = None
    k2: Decimal | None = None
    k_axis: int | None = None
    iop: Decimal | None = None
    unaided_distance: str | None = None
    aided_distance: str | None = None
    unaided_near: str | None = None
    aided_near: str | None = None
    #: Ophthalmoscopy per eye, ``(finding, text)`` in the form's order.
    fundus: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SightTestRecord:
    """The UK sight-test parts of an examination form (labels already in words)."""

    history: tuple[tuple[str, str], ...] = ()
    binocular_acuity: tuple[tuple[str, str], ...] = ()
    binocular_vision: tuple[tuple[str, str], ...] = ()
    ophthalmoscopy_method: str | None = None
    outcome: str | None = None
    referral_reason: str | None = None
    recall_date: date | None = None
    optometrist_name: str | None = None
    goc_number: str | None = None


@dataclass(frozen=True, slots=True)
class ExaminationData:
    """A practice's confidential clinical record of one examination."""

    letterhead: Letterhead
    #: ``EX-`` and the start of the examination id: what the practice files it under.
    reference: str
    examined_at: str
    examiner_name: str | None
    patient_name: str
    patient_reference: str | None
    patient_birth_date: date | None
    right: EyeExamination
    left: EyeExamination
    slit_lamp_notes: str | None = None
    fundus_notes: str | None = None
    recommendations: str | None = None
    sight_test: SightTestRecord = field(default_factory=SightTestRecord)
    meta: DocumentMeta = field(default_factory=DocumentMeta)


#: Whatever one render call takes.
DocumentData = OrderSheetData | LabTicketData | InvoiceData | ReceiptData | ExaminationData
