"""Documents as a UK business needs them, read back from the rendered PDF and PNG.

The invoice names each VAT rate the way HMRC does (standard 20%, reduced 5%, zero 0%,
exempt), shows the tax point and marks prices as excluding VAT; the order sheet prints
axes with the degree sign and prisms in prism dioptres (Δ) with their base. The font
that draws Δ (DejaVu Sans) and its fallback (Helvetica, prism spelled out) are both
rendered. Each document's first page is written as a PNG under
``var/documents-review/`` for a person to look at, and the lab ticket's barcode is
decoded from that picture by zxing-cpp and compared with the order number.

Expected figures are worked out by hand in this file, not by ``ils.domain.billing``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp
from PIL import Image

from ils.domain.billing import VatRateBand, invoice_totals, vat_band, vat_rate_name
from ils.workers.pdf import fmt, fonts
from ils.workers.pdf.data import (
    DocumentKind,
    EyePrescription,
    InvoiceData,
    InvoiceLineData,
    LabTicketData,
    OrderSheetData,
)
from ils.workers.pdf.load import vat_rates
from ils.workers.pdf.render import render_document
from ils.workers.pdf.samples import LAB, META, PRACTICE, invoice_facts, order_facts, sample
from tests.workers.pdf_support import pdf_pages, pdf_text

ROOT = Path(__file__).resolve().parents[2]
REVIEW_DIR = ROOT / "var" / "documents-review"
REVIEW_DPI = 150


def squash(text: str) -> str:
    """pypdf puts table cells on separate lines: compare on single spaces."""
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class _Line:
    """A line as ``invoice_totals`` reads it (the domain's ``VatLine``)."""

    quantity: int
    unit_price_cents: int
    vat_treatment: str
    vat_rate_bp: int


def uk_invoice() -> InvoiceData:
    """One line at each UK rate and an exempt one."""
    raw = [
        ("Frames, metal", 2, 4_000, "standard", 2000),
        ("Energy-saving fitting", 1, 3_333, "standard", 500),
        ("Low vision aid", 1, 2_000, "standard", 0),
        ("Sight test", 1, 2_500, "exempt", 0),
    ]
    lines = tuple(InvoiceLineData(d, q, p, t, r, q * p) for d, q, p, t, r in raw)
    totals = invoice_totals(_Line(q, p, t, r) for _, q, p, t, r in raw)  # type: ignore[misc]
    facts = dataclasses.replace(
        invoice_facts(),
        lines=lines,
        rates=vat_rates(totals),
        net_cents=totals.net_cents,
        vat_cents=totals.vat_cents,
        gross_cents=totals.gross_cents,
    )
    return InvoiceData(LAB, facts, META)


# -- invoice ---------------------------------------------------------------------------


def test_invoice_names_every_uk_rate_with_its_totals() -> None:
    text = squash(pdf_text(render_document(DocumentKind.INVOICE, uk_invoice())))
    # By hand: 2 x 40.00 at 20% = 80.00 + 16.00; 33.33 at 5% = 1.6665 -> 1.67;
    # 20.00 at 0%; 25.00 exempt. Net 158.33, VAT 17.67, gross 176.00.
    assert "Standard rate 20% £80.00 £16.00 £96.00" in text
    assert "Reduced rate 5% £33.33 £1.67 £35.00" in text
    assert "Zero rate 0% £20.00 £0.00 £20.00" in text
    assert "Exempt £25.00 £0.00 £25.00" in text
    assert "Total £158.33 £17.67 £176.00" in text
    assert "Standard 5%" not in text and "Standard rate 5%" not in text
    assert "Energy-saving fitting 1 £33.33 5% £33.33" in text


def test_invoice_shows_tax_point_and_net_prices() -> None:
    data = sample(DocumentKind.INVOICE)
    text = squash(pdf_text(render_document(DocumentKind.INVOICE, data)))
    # The tax point is the invoice date (28 Nov 2026 in the sample).
    assert "Tax point 28 Nov 2026" in text
    assert "Unit price (net, excl. VAT)" in text
    assert "Net amount (excl. VAT)" in text
    assert "Total net (excl. VAT) £158.00" in text
    assert "Total due (incl. VAT) £182.60" in text


@pytest.mark.parametrize(
    ("treatment", "rate_bp", "band", "name"),
    [
        ("standard", 2000, VatRateBand.STANDARD, "Standard rate 20%"),
        ("standard", 500, VatRateBand.REDUCED, "Reduced rate 5%"),
        ("standard", 0, VatRateBand.ZERO, "Zero rate 0%"),
        ("exempt", 0, VatRateBand.EXEMPT, "Exempt"),
        ("standard", 1750, VatRateBand.OTHER, "VAT 17.5%"),
    ],
)
def test_uk_vat_rate_names(treatment: str, rate_bp: int, band: VatRateBand, name: str) -> None:
    assert vat_band(treatment, rate_bp) == band
    assert vat_rate_name(treatment, rate_bp) == name
    assert fmt.vat_rate_name(treatment, rate_bp) == name


# -- prescriptions: degree and prism signs ---------------------------------------------


def test_prescription_formatting_functions() -> None:
    assert fmt.axis_degrees(175) == "175°"
    assert fmt.axis_degrees(0) == "0°"
    assert fmt.axis_degrees(None) == "-"
    if fonts.has_prism_sign():
        assert fmt.prism_dioptres(Decimal("1.5"), "in") == "1.50Δ base in"
        assert fmt.prism_dioptres(Decimal("2"), None) == "2.00Δ base ?"
        both = [(Decimal("1.5"), "in"), (Decimal("0.5"), "up")]
        assert fmt.compound_prism(both) == "1.50Δ base in, 0.50Δ base up"
    assert fmt.prism_dioptres(Decimal("0"), "in") == "-"
    assert fmt.compound_prism([(None, None), (Decimal("0"), "up")]) == "-"


def test_order_sheet_prints_degrees_and_prism_dioptres() -> None:
    text = squash(
        pdf_text(render_document(DocumentKind.ORDER_SHEET, sample(DocumentKind.ORDER_SHEET)))
    )
    # The sample: R -2.25 -0.75 x 175 add +2.00; L +1.50 -0.50 x 10, 1.50 base in.
    assert "R -2.25 -0.75 175° +2.00 - 31.5 22" in text
    assert "L +1.50 -0.50 10° +2.25 1.50Δ base in 32 21.5" in text


def test_order_sheet_prints_a_prism_base_up() -> None:
    order = dataclasses.replace(
        order_facts(),
        right=EyePrescription(
            sphere=Decimal("-1.00"), axis=90, prism=Decimal("0.75"), prism_base="up"
        ),
    )
    data = OrderSheetData(PRACTICE, order, LAB.address_lines, META)
    text = squash(pdf_text(render_document(DocumentKind.ORDER_SHEET, data)))
    assert "R -1.00 - 90° - 0.75Δ base up" in text


def test_order_sheet_prints_both_components_of_a_compound_prism() -> None:
    order = dataclasses.replace(
        order_facts(),
        left=EyePrescription(
            sphere=Decimal("0.50"),
            prism=Decimal("2"),
            prism_base="out",
            prism_vertical=Decimal("0.5"),
            prism_vertical_base="down",
        ),
    )
    data = OrderSheetData(PRACTICE, order, LAB.address_lines, META)
    text = squash(pdf_text(render_document(DocumentKind.ORDER_SHEET, data)))
    sign = fmt.prism_sign()
    # The cell wraps after the comma; pypdf reads it back on one line.
    assert f"2.00{sign} base out, 0.50{sign} base down" in text


def test_documents_embed_the_font_with_the_prism_sign() -> None:
    if not fonts.has_prism_sign():
        pytest.skip("DejaVu Sans is not installed: the fallback test covers this machine")
    content = render_document(DocumentKind.ORDER_SHEET, sample(DocumentKind.ORDER_SHEET))
    resources = pdf_pages(content)[0]["/Resources"]["/Font"]  # type: ignore[index]
    names = {str(font.get_object()["/BaseFont"]) for font in resources.values()}
    assert any("DejaVuSans" in name for name in names), names
    assert not any("Helvetica" in name for name in names), names


_FALLBACK_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ils.workers.pdf import fonts
    fonts.ensure_fonts([Path(p) for p in sys.argv[1:]])
    from ils.workers.pdf.data import DocumentKind
    from ils.workers.pdf.render import render_document
    from ils.workers.pdf.samples import sample
    from tests.workers.pdf_support import pdf_text
    content = render_document(DocumentKind.ORDER_SHEET, sample(DocumentKind.ORDER_SHEET))
    print(fonts.has_prism_sign())
    print(" ".join(pdf_text(content).split()))
    """
)


@pytest.mark.parametrize("font_dir", ["none", "damaged"])
def test_without_dejavu_the_prism_is_spelled_out_in_helvetica(
    font_dir: str, tmp_path: Path
) -> None:
    """A fresh process (reportlab's font registry is per process) where DejaVu is
    missing or its files are not fonts: the documents still render, in Helvetica,
    with the prism spelled out and the degree sign (which WinAnsi has) kept."""
    dirs: list[str] = []
    if font_dir == "damaged":
        for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
            (tmp_path / name).write_bytes(b"not a font")
        dirs = [str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", _FALLBACK_SCRIPT, *dirs],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    has_sign, text = done.stdout.splitlines()
    assert has_sign == "False"
    assert "L +1.50 -0.50 10° +2.25 1.50 prism dioptres base in 32 21.5" in text
    assert "Δ" not in text


# -- the other documents, unchanged otherwise --------------------------------------------


def test_lab_ticket_and_examination_form_still_read_back() -> None:
    ticket = squash(
        pdf_text(
            render_document(DocumentKind.LAB_WORK_TICKET, sample(DocumentKind.LAB_WORK_TICKET))
        )
    )
    assert "Lab work ticket ORD-2026-000042" in ticket
    assert "Due 4 Dec 2026" in ticket
    assert "Final inspection (QC)" in ticket
    exam = squash(
        pdf_text(
            render_document(DocumentKind.EXAMINATION_FORM, sample(DocumentKind.EXAMINATION_FORM))
        )
    )
    assert "CONFIDENTIAL" in exam
    assert "Sample Patient" in exam


# -- pictures for a person, and the barcode read from one ---------------------------------


def first_page_png(content: bytes, path: Path, dpi: int = REVIEW_DPI) -> Image.Image:
    """Draw page 1 with PDFium (as ``bench/pdf.py --render-png`` does) and save it."""
    document = pdfium.PdfDocument(content)
    try:
        image: Image.Image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return image


@pytest.mark.parametrize("kind", list(DocumentKind))
def test_first_page_png_for_review(kind: DocumentKind) -> None:
    content = render_document(kind, sample(kind))
    path = REVIEW_DIR / f"{kind.value}.png"
    first_page_png(content, path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        width_pt = float(pdf_pages(content)[0].mediabox.width)
        assert abs(image.width - width_pt * REVIEW_DPI / 72) <= 1
        darkest, lightest = image.convert("L").getextrema()
        assert isinstance(darkest, int) and isinstance(lightest, int)
        assert darkest < 64 and lightest > 240  # ink on paper, not a blank page


@pytest.mark.parametrize("number", ["ORD-2026-000042", "ORD-2027-123456"])
def test_lab_ticket_barcode_decodes_to_the_order_number(number: str) -> None:
    order = dataclasses.replace(order_facts(), number=number)
    content = render_document(DocumentKind.LAB_WORK_TICKET, LabTicketData(LAB, order, META))
    image = first_page_png(content, REVIEW_DIR / f"lab_work_ticket-barcode-{number}.png", dpi=200)
    found = zxingcpp.read_barcodes(image)
    codes = [(result.format, result.text) for result in found]
    assert codes == [(zxingcpp.BarcodeFormat.Code128, number)]
