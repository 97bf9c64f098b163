"""Each document drawn from plain values, opened again with pypdf and read.

What a person filing the document relies on must be in its text: the numbers,
every prescription value, every invoice line and total, the VAT split, page numbers,
the confidential marking. No database here: ``ils.workers.pdf.samples`` holds the
values (the job tests render from real rows).
"""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest
from reportlab.lib.pagesizes import A4, LETTER

from ils.workers.pdf import fmt
from ils.workers.pdf.data import DocumentKind, InvoiceData, LabTicketData, Letterhead
from ils.workers.pdf.render import render_document
from ils.workers.pdf.samples import LAB, invoice_facts, order_facts, sample, synthetic_outline
from ils.workers.pdf.shape import clean_outline
from tests.workers.pdf_support import pdf_pages, pdf_text


def render(kind: DocumentKind) -> str:
    return pdf_text(render_document(kind, sample(kind)))


def squash(text: str) -> str:
    """pypdf puts table cells on separate lines: compare on single spaces."""
    return " ".join(text.split())


@pytest.mark.parametrize("kind", list(DocumentKind))
def test_every_document_has_header_number_and_page_numbers(kind: DocumentKind) -> None:
    data = sample(kind)
    content = render_document(kind, data)
    assert content.startswith(b"%PDF-")
    text = squash(pdf_text(content))
    assert data.letterhead.name in text
    # The examination form is a full sight-test record: two pages.
    pages = 2 if kind == DocumentKind.EXAMINATION_FORM else 1
    assert f"Page 1 of {pages}" in text
    assert "version 1" in text


@pytest.mark.parametrize("kind", [DocumentKind.LAB_WORK_TICKET, DocumentKind.ORDER_SHEET])
def test_order_documents_print_every_prescription_value(kind: DocumentKind) -> None:
    text = squash(render(kind))
    order = order_facts()
    assert order.number in text
    assert order.patient_reference in text
    for eye in (order.right, order.left):
        assert fmt.dioptres(eye.sphere) in text
        assert fmt.dioptres(eye.cylinder) in text
        assert str(eye.axis) in text
        assert fmt.dioptres(eye.add) in text
        assert fmt.mm(eye.pd) in text
        assert fmt.mm(eye.height) in text
    # Degree and prism signs on both documents (issue 20), a single prism included.
    assert "-2.25 -0.75 175° +2.00" in text  # the right eye's row, in order
    assert f"+1.50 -0.50 10° +2.25 1.50{fmt.prism_sign()} base in 32 21.5" in text
    assert "63.5" in text  # binocular PD
    for value in (
        "Progressive",
        "Polycarbonate",
        "1.60",
        "Anti-reflective, Hard coat",  # the labels of anti_reflective, hard_coat
        "Hard coat",
        "Grey 20 %",
    ):
        assert value in text
    for label, value in (("A", "52"), ("B", "38"), ("DBL", "18"), ("ED", "55.5")):
        assert label in text and value in text


def test_lab_ticket_has_due_date_practice_and_stations() -> None:
    text = squash(render(DocumentKind.LAB_WORK_TICKET))
    assert "Due 4 Dec 2026" in text
    assert "Brightside Opticians" in text
    for station in ("Surfacing", "Edging & mounting", "Final inspection", "Packing & dispatch"):
        assert station in text
    assert "traced shape" in text


def test_lab_ticket_draws_a_code128_barcode_of_the_order_number() -> None:
    content = render_document(DocumentKind.LAB_WORK_TICKET, sample(DocumentKind.LAB_WORK_TICKET))
    stream = pdf_pages(content)[0].get_contents()
    assert stream is not None
    # A Code 128 of ORD-2026-000042 is dozens of filled bars (rectangles).
    assert stream.get_data().count(b" re") > 40


def test_lab_ticket_without_tracing_draws_the_box() -> None:
    order = order_facts(outline=False)
    data = LabTicketData(LAB, order)
    text = squash(pdf_text(render_document(DocumentKind.LAB_WORK_TICKET, data)))
    assert "boxed size only (no tracing attached)" in text


def test_order_sheet_has_price_and_no_patient_name() -> None:
    text = squash(render(DocumentKind.ORDER_SHEET))
    assert "£129.50" in text
    assert "Sample Patient" not in text  # the only name in the samples is the exam's


def test_invoice_prints_each_line_the_vat_split_and_totals() -> None:
    text = squash(render(DocumentKind.INVOICE))
    invoice = invoice_facts()
    assert invoice.number in text
    assert "28 Nov 2026" in text and "28 Dec 2026" in text
    for line in invoice.lines:
        assert line.description in text
    assert "Progressive lenses, 1.60 polycarbonate, pair 1 £98.00 20% £98.00" in text
    assert "Anti-reflective coating 2 £12.50 20% £25.00" in text
    assert "Dispensing and fitting 1 £35.00 Exempt £35.00" in text
    # VAT analysis: standard 20% on 123.00 is 24.60; exempt 35.00 carries none.
    assert "Standard rate 20% £123.00 £24.60 £147.60" in text
    assert "Exempt £35.00 £0.00 £35.00" in text
    assert "Total £158.00 £24.60 £182.60" in text
    assert "Payment within 30 days" in text


def test_receipt_prints_payment_and_balance() -> None:
    text = squash(render(DocumentKind.RECEIPT))
    assert "RCT-INV-2026-00012-1" in text
    assert "INV-2026-00012" in text
    assert "£100.00" in text  # received
    assert "Invoice total £182.60" in text
    assert "Balance left £82.60" in text
    assert "BACS 7781" in text


def test_examination_form_prints_the_record_marked_confidential() -> None:
    text = squash(render(DocumentKind.EXAMINATION_FORM))
    assert "CONFIDENTIAL" in text
    assert "Sample Patient" in text
    for value in ("6/6", "6/9", "-2.25", "-0.75", "175", "+2.00", "+1.50", "+2.25"):
        assert value in text
    for value in ("43.25", "44.00", "43.50", "44.25", "15.00", "16.00"):
        assert value in text
    assert "Cornea clear" in text
    assert "Review in 2 years" in text


@pytest.mark.parametrize(("paper", "size"), [("A4", A4), ("Letter", LETTER)])
def test_paper_size_follows_the_company(paper: str, size: tuple[float, float]) -> None:
    head = dataclasses.replace(LAB, paper_size=paper)
    content = render_document(DocumentKind.INVOICE, InvoiceData(head, invoice_facts()))
    box = pdf_pages(content)[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (round(size[0]), round(size[1]))


def test_long_invoice_breaks_pages_with_numbers_and_repeated_headings() -> None:
    facts = invoice_facts()
    many = tuple(
        dataclasses.replace(facts.lines[0], description=f"Lens pair {n:03d}") for n in range(80)
    )
    data = InvoiceData(LAB, dataclasses.replace(facts, lines=many))
    pages = pdf_pages(render_document(DocumentKind.INVOICE, data))
    assert len(pages) >= 2
    texts = [squash(page.extract_text()) for page in pages]
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert "CLEAR VIEW" in text  # the header on every page
    assert "Description Qty Unit price (net, excl. VAT) VAT rate Net amount (excl. VAT)" in texts[1]
    assert "Lens pair 079" in " ".join(texts)


def test_document_values_survive_pickling_for_the_pool() -> None:
    for kind in DocumentKind:
        data = sample(kind)
        assert pickle.loads(pickle.dumps(data)) == data  # noqa: S301 (our own bytes)


def test_same_values_give_the_same_bytes() -> None:
    data = sample(DocumentKind.INVOICE)
    assert render_document(DocumentKind.INVOICE, data) == render_document(
        DocumentKind.INVOICE, data
    )


def test_wrong_data_class_is_refused() -> None:
    with pytest.raises(TypeError):
        render_document(DocumentKind.INVOICE, sample(DocumentKind.RECEIPT))


def test_letterhead_with_a_bad_colour_still_renders() -> None:
    head = Letterhead(name="Odd Co", primary_color="#zzzzzz", paper_size="letter")
    text = pdf_text(render_document(DocumentKind.INVOICE, InvoiceData(head, invoice_facts())))
    assert "Odd Co" in text


# -- outlines -------------------------------------------------------------------------


def test_clean_outline_accepts_the_documented_format() -> None:
    outline = clean_outline(synthetic_outline())
    assert outline is not None
    assert len(outline) == 180
    xs = [x for x, _ in outline]
    assert max(xs) == pytest.approx(26, abs=0.01)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "not a list",
        [[0, 0]] * 10,  # no area
        [[1, 2, 3]] * 10,
        [[float("nan"), 1]] * 10,
        [[100, 0], [0, 100], [-100, 0], [0, -100]] * 3,  # beyond any lens
        [["1", "2"]] * 10,
        [[0, 0], [1, 0], [0, 1]],  # too few points
    ],
)
def test_clean_outline_refuses_unusable_shapes(raw: object) -> None:
    assert clean_outline(raw) is None


def test_fmt_rules() -> None:
    assert fmt.dioptres(Decimal("0")) == "0.00"
    assert fmt.dioptres(Decimal("1.5")) == "+1.50"
    assert fmt.dioptres(None) == "-"
    assert fmt.money(-1200) == "-£12.00"
    assert fmt.money(123456789, "CHF") == "CHF 1,234,567.89"
    assert fmt.vat_rate("standard", 500) == "5%"
    assert fmt.vat_rate("standard", 1750) == "17.5%"
    assert fmt.vat_rate("exempt", 0) == "Exempt"
    assert fmt.mm(Decimal("18.00")) == "18"


# -- issue 20: lens option labels, compound prism, the UK sight-test record ----------


def test_lab_ticket_prints_lens_option_labels_and_a_compound_prism() -> None:
    base = sample(DocumentKind.LAB_WORK_TICKET)
    assert isinstance(base, LabTicketData)
    order = base.order
    lens = dataclasses.replace(
        order.lens, material="cr39", coatings=("anti_reflective", "blue_light"), tint=None
    )
    left = dataclasses.replace(
        order.left,
        prism=Decimal("1.50"),
        prism_base="in",
        prism_vertical=Decimal("0.75"),
        prism_vertical_base="up",
    )
    data = dataclasses.replace(base, order=dataclasses.replace(order, lens=lens, left=left))
    text = squash(pdf_text(render_document(DocumentKind.LAB_WORK_TICKET, data)))
    # The anti-reflective station is not "n/a" when the code is ordered.
    assert "Anti-reflective coating initials" in text
    assert "Anti-reflective coating n/a" not in text
    assert "CR-39" in text and "cr39" not in text
    assert "Blue-light filter" in text
    assert f"1.50{fmt.prism_sign()} base in, 0.75{fmt.prism_sign()} base up" in text


def test_examination_form_stands_as_a_uk_sight_test_record() -> None:
    from datetime import date

    from ils.workers.pdf.data import ExaminationData, SightTestRecord

    base = sample(DocumentKind.EXAMINATION_FORM)
    assert isinstance(base, ExaminationData)
    right = dataclasses.replace(
        base.right,
        unaided_distance="6/12",
        aided_distance="6/6",
        unaided_near=None,
        aided_near="N5",
        fundus=(("Media", "clear"), ("C/D ratio", "0.3")),
    )
    left = dataclasses.replace(
        base.left,
        unaided_distance=None,
        aided_distance=None,
        unaided_near="N10",
        aided_near=None,
        fundus=(("Macula", "drusen"),),
    )
    record = SightTestRecord(
        history=(("Reason for visit", "Routine"), ("Symptoms", "Headaches when reading")),
        binocular_acuity=(("Aided distance", "6/5"),),
        binocular_vision=(("Cover test (near)", "4 exophoria, good recovery"),),
        ophthalmoscopy_method="slit lamp binocular indirect",
        outcome="Referral",
        referral_reason="Drusen at the left macula: routine referral.",
        recall_date=date(2027, 3, 2),
        optometrist_name="Priya Shah",
        goc_number="01-23456",
    )
    data = dataclasses.replace(base, right=right, left=left, sight_test=record)
    text = squash(pdf_text(render_document(DocumentKind.EXAMINATION_FORM, data)))
    for expected in (
        "History and symptoms",
        "Symptoms Headaches when reading",
        "Unaided distance Aided distance Unaided near Aided near",
        "R 6/12 6/6 - N5",
        "L - - N10 -",
        "Both - 6/5 - -",
        "Binocular vision",
        "Cover test (near) 4 exophoria, good recovery",
        "Ophthalmoscopy",
        "Method slit lamp binocular indirect",
        "Media clear -",
        "Macula - drusen",
        "Outcome Referral",
        "Recall date 2 Mar 2027",
        "Drusen at the left macula: routine referral.",
        "Name Priya Shah",
        "GOC registration no. 01-23456",
        "Signature",
        "CONFIDENTIAL",
    ):
        assert expected in text, expected
