"""Example values of every document, for bench/pdf.py and tests to render and look at.

Made up, and recognisable as such: no real person or company.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

from ils.domain.billing import VatTreatment, invoice_totals
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
)
from ils.workers.pdf.load import vat_rates

LAB = Letterhead(
    name="Clear View Lab Ltd",
    address_lines=("1 Lens Street", "Leeds LS1 1AA", "GB"),
    vat_number="GB123456789",
    email="orders@clearview.example",
    phone="0113 000 0000",
    primary_color="#0a7c59",
    logo_text="CLEAR VIEW",
)
PRACTICE = Letterhead(
    name="Brightside Opticians",
    address_lines=("22 High Street", "York YO1 7HF", "GB"),
    email="hello@brightside.example",
    primary_color="#6a1b9a",
)
META = DocumentMeta(version=1, generated_at="28 Nov 2026 09:00 GMT")


def synthetic_outline(
    width: float = 52.0, depth: float = 38.0, points: int = 180
) -> list[list[float]]:
    """A rounded, slightly nasal-dipping lens shape (a superellipse) in the
    ``orders.frame_outline`` format: ``[[x, y], ...]`` mm around the boxing centre."""
    shape: list[list[float]] = []
    for i in range(points):
        t = 2 * math.pi * i / points
        c, s = math.cos(t), math.sin(t)
        x = width / 2 * math.copysign(abs(c) ** 0.6, c)
        y = depth / 2 * math.copysign(abs(s) ** 0.7, s)
        # The nasal lower part (+x, -y) is cut in a little, as most frames are.
        if x > 0 and y < 0:
            y *= 1 - 0.18 * (x / (width / 2)) ** 2
        shape.append([round(x, 2), round(y, 2)])
    return shape


def order_facts(*, outline: bool = True) -> OrderFacts:
    """A progressive order with cylinder, prism and a traced frame."""
    return OrderFacts(
        number="ORD-2026-000042",
        status="accepted",
        ordered_on=date(2026, 11, 27),
        due_date=date(2026, 12, 4),
        practice_name=PRACTICE.name,
        lab_name=LAB.name,
        patient_reference="P-0042",
        right=EyePrescription(
            sphere=Decimal("-2.25"),
            cylinder=Decimal("-0.75"),
            axis=175,
            add=Decimal("2.00"),
            pd=Decimal("31.5"),
            height=Decimal("22"),
        ),
        left=EyePrescription(
            sphere=Decimal("1.50"),
            cylinder=Decimal("-0.50"),
            axis=10,
            add=Decimal("2.25"),
            prism=Decimal("1.50"),
            prism_base="in",
            pd=Decimal("32"),
            height=Decimal("21.5"),
        ),
        pd_binocular=Decimal("63.5"),
        lens=LensSpec(
            design="progressive",
            material="polycarbonate",
            index=Decimal("1.60"),
            coatings=("anti_reflective", "hard_coat"),
            tint="grey_20",
        ),
        frame=FrameSpec(
            brand="Ray-Ban",
            model="RB5154",
            colour="tortoise",
            box_a=Decimal("52"),
            box_b=Decimal("38"),
            dbl=Decimal("18"),
            ed=Decimal("55.5"),
            outline=tuple((x, y) for x, y in synthetic_outline()) if outline else None,
        ),
        price_cents=12_950,
        notes="Fit height measured in the frame.",
    )


def invoice_facts(*, payments: tuple[PaymentData, ...] = ()) -> InvoiceFacts:
    """A lab invoice with standard-rated goods and an exempt dispensing line."""
    raw = [
        ("Progressive lenses, 1.60 polycarbonate, pair", 1, 9_800, "standard", 2000),
        ("Anti-reflective coating", 2, 1_250, "standard", 2000),
        ("Dispensing and fitting", 1, 3_500, "exempt", 0),
    ]
    lines = tuple(InvoiceLineData(d, q, p, t, r, q * p) for d, q, p, t, r in raw)
    totals = invoice_totals(_Line(line) for line in lines)
    return InvoiceFacts(
        number="INV-2026-00012",
        status="issued",
        issued_on=date(2026, 11, 28),
        due_on=date(2026, 12, 28),
        currency="GBP",
        payment_terms_days=30,
        customer_name=PRACTICE.name,
        customer_address=PRACTICE.address_lines,
        customer_vat_number="GB987654321",
        order_number="ORD-2026-000042",
        lines=lines,
        rates=vat_rates(totals),
        net_cents=totals.net_cents,
        vat_cents=totals.vat_cents,
        gross_cents=totals.gross_cents,
        payments=payments,
    )


class _Line:
    """An :class:`InvoiceLineData` seen as a ``VatLine`` of ``ils.domain.billing``."""

    def __init__(self, line: InvoiceLineData) -> None:
        self.quantity = line.quantity
        self.unit_price_cents = line.unit_price_cents
        self.vat_treatment = VatTreatment(line.vat_treatment)
        self.vat_rate_bp = line.vat_rate_bp


def sample(kind: DocumentKind) -> DocumentData:
    """Example data of ``kind``."""
    if kind == DocumentKind.ORDER_SHEET:
        return OrderSheetData(PRACTICE, order_facts(), LAB.address_lines, META)
    if kind == DocumentKind.LAB_WORK_TICKET:
        return LabTicketData(LAB, order_facts(), META)
    if kind == DocumentKind.INVOICE:
        return InvoiceData(LAB, invoice_facts(), META)
    if kind == DocumentKind.RECEIPT:
        payment = PaymentData(date(2026, 11, 30), "bank_transfer", 10_000, "BACS 7781")
        return ReceiptData(
            LAB, invoice_facts(payments=(payment,)), "RCT-INV-2026-00012-1", payment, META
        )
    return ExaminationData(
        letterhead=PRACTICE,
        reference="EX-3F2A9C1D",
        examined_at="27 Nov 2026 10:30 GMT",
        examiner_name="A. Optom",
        patient_name="Sample Patient",
        patient_reference="P-0042",
        patient_birth_date=date(1961, 3, 14),
        right=EyeExamination(
            "6/6",
            Decimal("-2.25"),
            Decimal("-0.75"),
            175,
            Decimal("2.00"),
            Decimal("43.25"),
            Decimal("44.00"),
            90,
            Decimal("15"),
            unaided_distance="6/18",
            aided_distance="6/6",
            unaided_near="N10",
            aided_near="N5",
            fundus=(("Media", "clear"), ("C/D ratio", "0.3"), ("Macula", "healthy")),
        ),
        left=EyeExamination(
            "6/9",
            Decimal("1.50"),
            Decimal("-0.50"),
            10,
            Decimal("2.25"),
            Decimal("43.50"),
            Decimal("44.25"),
            85,
            Decimal("16"),
            unaided_distance="6/12",
            aided_distance="6/9",
            unaided_near="N8",
            aided_near="N5",
            fundus=(("Media", "clear"), ("C/D ratio", "0.3"), ("Macula", "healthy")),
        ),
        slit_lamp_notes="Lids and lashes clear. Cornea clear. Anterior chamber deep and quiet.",
        fundus_notes="Discs pink, well defined, C/D 0.3 both eyes. Maculae healthy.",
        recommendations="Progressive lenses for full-time wear. Review in 2 years.",
        # Issue 20: the UK sight-test record parts (ils.domain.sight_test labels).
        sight_test=SightTestRecord(
            history=(
                ("Reason for visit", "Routine eye examination"),
                ("Symptoms", "Near vision blurred late in the day"),
                ("General health", "Good; type 2 diabetes, diet controlled"),
                ("Medication", "None"),
            ),
            binocular_acuity=(("Aided distance", "6/6"), ("Aided near", "N5")),
            binocular_vision=(
                ("Cover test (distance)", "orthophoria"),
                ("Cover test (near)", "slight exophoria, good recovery"),
                ("Near point of convergence", "8 cm"),
            ),
            ophthalmoscopy_method="slit lamp binocular indirect",
            outcome="New prescription issued",
            recall_date=date(2027, 11, 27),
            optometrist_name="A. Optom",
            goc_number="01-23456",
        ),
        meta=META,
    )
