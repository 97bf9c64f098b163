"""The lab work ticket: travels with the job tray from job entry to dispatch.

What a lab hand needs at a station and nothing more: the job number as a Code 128
barcode (scanned at each station), the practice and due date, the prescription, the
lens and frame, the frame's shape, and the stations to sign off. The patient appears
only as the practice's reference.
"""

from __future__ import annotations

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.units import mm

from ils.workers.pdf import fmt
from ils.workers.pdf.data import LabTicketData, OrderFacts
from ils.workers.pdf.layout import BOLD, FONT, GREY, Sheet
from ils.workers.pdf.prescription import draw_prescription, frame_fields, lens_fields, option_label
from ils.workers.pdf.shape import DRAWING_HEIGHT, draw_frame, hole_label

BARCODE_HEIGHT = 13 * mm


def stations(order: OrderFacts) -> list[tuple[str, str]]:
    """The production stations in order; treatments not ordered say so."""
    lens = order.lens
    coatings = set(lens.coatings)
    hard = "hard_coat" in coatings
    ar = "anti_reflective" in coatings
    others = sorted(coatings - {"hard_coat", "anti_reflective"})
    return [
        ("Job entry & lens pick", f"{option_label(lens.material)} {fmt.plain(lens.index)}"),
        ("Surfacing (generate)", fmt.words(lens.design)),
        ("Fining & polishing", ""),
        ("Tint", option_label(lens.tint) if lens.tint else "n/a"),
        ("Hard coat", "" if hard else "n/a"),
        ("Anti-reflective coating", "" if ar else "n/a"),
        ("Other treatments", ", ".join(option_label(c) for c in others) if others else "n/a"),
        ("Edging & mounting", " ".join(v for v in (order.frame.brand, order.frame.model) if v)),
        ("Final inspection (QC)", "power, axis, centration, cosmetics"),
        ("Packing & dispatch", f"due {fmt.day(order.due_date)}"),
    ]


def _tracing_lines(sheet: Sheet, order: OrderFacts) -> None:
    """Drill hole positions and the tracing's warnings, under the shape."""
    frame = order.frame
    if frame.holes:
        holes = "; ".join(
            f"{hole_label(i)} {h.eye} x {h.x_mm:+.1f} y {h.y_mm:+.1f} mm Ø{h.diameter_mm:.1f}"
            for i, h in enumerate(frame.holes, start=1)
        )
        sheet.paragraph(f"Drill holes (from boxing centre, x nasal): {holes}", size=8)
    for warning in frame.tracing_warnings:
        sheet.paragraph(f"Tracing warning: {warning}", size=8)


def render_lab_ticket(data: LabTicketData) -> bytes:
    """The ticket as PDF bytes."""
    order = data.order
    sheet = Sheet(data.letterhead, "Lab work ticket", order.number, data.meta)
    c = sheet.canvas
    barcode = Code128(order.number, barHeight=BARCODE_HEIGHT, barWidth=0.95, humanReadable=False)
    sheet.room(BARCODE_HEIGHT + 8 * mm)
    top = sheet.y
    barcode.drawOn(c, sheet.left - barcode.lquiet, top - BARCODE_HEIGHT - 2 * mm)
    c.setFont(BOLD, 20)
    c.drawRightString(sheet.right, top - 9 * mm, order.number)
    c.setFont(FONT, 9)
    c.setFillColor(GREY)
    c.drawRightString(sheet.right, top - 14 * mm, f"Due {fmt.day(order.due_date)}")
    c.setFillColor(colors.black)
    sheet.y = top - BARCODE_HEIGHT - 6 * mm
    sheet.fields(
        [
            ("Practice", order.practice_name),
            ("Due date", fmt.day(order.due_date)),
            ("Patient ref.", order.patient_reference),
            ("Ordered", fmt.day(order.ordered_on)),
            ("Status", fmt.words(order.status)),
            ("Design", fmt.words(order.lens.design)),
        ]
    )
    draw_prescription(sheet, order)
    sheet.heading("Lens")
    sheet.fields(lens_fields(order))
    sheet.heading("Frame")
    # Measurements on the left, the shape beside them: the ticket stays on one page.
    sheet.room(DRAWING_HEIGHT)
    top = sheet.y
    split = sheet.content_width * 0.42
    sheet.fields(frame_fields(order), columns=1, width=split, label_share=0.45)
    below_fields = sheet.y
    sheet.y = top
    draw_frame(sheet, order.frame, x=sheet.left + split, width=sheet.content_width - split)
    sheet.y = min(sheet.y, below_fields)
    _tracing_lines(sheet, order)
    if order.notes:
        sheet.heading("Notes")
        sheet.paragraph(order.notes)
    sheet.heading("Production")
    sheet.checklist(stations(order))
    return sheet.finish()
