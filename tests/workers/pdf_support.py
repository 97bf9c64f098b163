"""What the PDF worker tests share: text of a PDF, and a small network with records.

``build_records`` puts a lab (Letter paper), a practice (A4), a patient, an order with
a traced frame, an invoice with standard-rated and exempt lines and a payment, and an
examination in a database, and returns them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdf
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.domain.billing import Invoice, InvoiceLine, Payment, PaymentMethod, VatTreatment
from ils.domain.clinical import Examination, Patient
from ils.domain.companies import Company, CompanyKind, PaperSize, Role, User
from ils.domain.orders import LensDesign, Order, OrderStatus, PrismBase
from ils.workers.pdf.samples import synthetic_outline

#: Never printed on a lab document, never logged.
PATIENT_FIRST = "Zebedee"
PATIENT_LAST = "Quillfeather"
ORDER_NUMBER = "ORD-2026-000777"
INVOICE_NUMBER = "INV-2026-00031"


def pdf_text(content: bytes) -> str:
    """Every page's text, pages joined by form feeds."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\f".join(page.extract_text() for page in reader.pages)


def pdf_pages(content: bytes) -> list[pypdf.PageObject]:
    """The pages of a PDF."""
    return list(pypdf.PdfReader(io.BytesIO(content)).pages)


@dataclass
class Records:
    lab: Company
    practice: Company
    lab_user: User
    practice_user: User
    patient: Patient
    order: Order
    invoice: Invoice
    empty_invoice: Invoice
    examination: Examination


async def build_records(sessions: async_sessionmaker[AsyncSession]) -> Records:
    """The records every document is made from (see the module docstring)."""
    lab = Company(
        kind=CompanyKind.LAB,
        name="Clear View Lab",
        address_line1="1 Lens Street",
        city="Leeds",
        postcode="LS1 1AA",
        vat_number="GB123456789",
        primary_color="#0a7c59",
        logo_text="CLEAR VIEW",
        paper_size=PaperSize.LETTER,
    )
    practice = Company(kind=CompanyKind.PRACTICE, name="Brightside Opticians", city="York")
    async with sessions() as session, session.begin():
        session.add_all([lab, practice])
        await session.flush()
        lab_user = User(
            company_id=lab.id,
            email="tech@clearview.test",
            name="Tech",
            password_hash="x",
            role=Role.STAFF,
        )
        practice_user = User(
            company_id=practice.id,
            email="ann@brightside.test",
            name="Ann Optom",
            password_hash="x",
            role=Role.STAFF,
        )
        patient = Patient(
            company_id=practice.id,
            reference="P-0042",
            first_name=PATIENT_FIRST,
            last_name=PATIENT_LAST,
            date_of_birth=date(1961, 3, 14),
        )
        session.add_all([lab_user, practice_user, patient])
        await session.flush()
        order = Order(
            number=ORDER_NUMBER,
            company_id=practice.id,
            lab_id=lab.id,
            patient_id=patient.id,
            created_by=practice_user.id,
            status=OrderStatus.ACCEPTED,
            right_sphere=Decimal("-2.25"),
            right_cylinder=Decimal("-0.75"),
            right_axis=175,
            right_add=Decimal("2.00"),
            left_sphere=Decimal("1.50"),
            left_cylinder=Decimal("-0.50"),
            left_axis=10,
            left_add=Decimal("2.25"),
            left_prism=Decimal("1.50"),
            left_prism_base=PrismBase.IN,
            pd_right=Decimal("31.5"),
            pd_left=Decimal("32"),
            seg_height_right=Decimal("22"),
            seg_height_left=Decimal("21.5"),
            lens_material="polycarbonate",
            lens_index=Decimal("1.60"),
            lens_design=LensDesign.PROGRESSIVE,
            coatings=["anti_reflective", "hard_coat"],
            tint="grey_20",
            frame_brand="Ray-Ban",
            frame_model="RB5154",
            frame_colour="tortoise",
            frame_box_a=Decimal("52"),
            frame_box_b=Decimal("38"),
            frame_dbl=Decimal("18"),
            frame_ed=Decimal("55.5"),
            frame_outline=synthetic_outline(),
            price_cents=12_950,
            due_date=date(2026, 12, 4),
        )
        session.add(order)
        await session.flush()
        invoice = Invoice(
            number=INVOICE_NUMBER,
            company_id=lab.id,
            customer_id=practice.id,
            order_id=order.id,
            issued_on=date(2026, 11, 28),
            due_on=date(2026, 12, 28),
            payment_terms_days=30,
            lines=[
                InvoiceLine(
                    position=0,
                    description="Progressive lenses, pair",
                    quantity=1,
                    unit_price_cents=9_800,
                    vat_treatment=VatTreatment.STANDARD,
                    vat_rate_bp=2000,
                ),
                InvoiceLine(
                    position=1,
                    description="Anti-reflective coating",
                    quantity=2,
                    unit_price_cents=1_250,
                    vat_treatment=VatTreatment.STANDARD,
                    vat_rate_bp=2000,
                ),
                InvoiceLine(
                    position=2,
                    description="Dispensing and fitting",
                    quantity=1,
                    unit_price_cents=3_500,
                    vat_treatment=VatTreatment.EXEMPT,
                    vat_rate_bp=0,
                ),
            ],
        )
        empty_invoice = Invoice(
            number="INV-2026-00032",
            company_id=lab.id,
            customer_id=practice.id,
            issued_on=date(2026, 11, 28),
            due_on=date(2026, 12, 28),
        )
        session.add_all([invoice, empty_invoice])
        await session.flush()
        session.add(
            Payment(
                invoice_id=invoice.id,
                company_id=lab.id,
                amount_cents=10_000,
                method=PaymentMethod.BANK_TRANSFER,
                reference="BACS 7781",
                received_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
            )
        )
        examination = Examination(
            company_id=practice.id,
            patient_id=patient.id,
            examiner_id=practice_user.id,
            examined_at=datetime(2026, 11, 27, 10, 30, tzinfo=UTC),
            va_right="6/6",
            va_left="6/9",
            right_sphere=Decimal("-2.25"),
            right_cylinder=Decimal("-0.75"),
            right_axis=175,
            right_add=Decimal("2.00"),
            left_sphere=Decimal("1.50"),
            left_cylinder=Decimal("-0.50"),
            left_axis=10,
            left_add=Decimal("2.25"),
            right_k1=Decimal("43.25"),
            right_k2=Decimal("44.00"),
            right_k_axis=90,
            left_k1=Decimal("43.50"),
            left_k2=Decimal("44.25"),
            left_k_axis=85,
            iop_right=Decimal("15"),
            iop_left=Decimal("16.5"),
            slit_lamp_notes="Cornea clear.",
            fundus_notes="Discs healthy, C/D 0.3.",
            recommendations="Progressive lenses; review in 2 years.",
        )
        session.add(examination)
    return Records(
        lab,
        practice,
        lab_user,
        practice_user,
        patient,
        order,
        invoice,
        empty_invoice,
        examination,
    )
