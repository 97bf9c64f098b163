"""The order sheet: the practice's record of what it ordered, from whom, at what price.

Filed by the practice with the patient's record, so the patient is named only by the
practice's reference: the sheet also goes to the lab, which needs no more.
"""

from __future__ import annotations

from reportlab.lib.units import mm

from ils.workers.pdf import fmt
from ils.workers.pdf.data import EyePrescription, OrderFacts, OrderSheetData
from ils.workers.pdf.layout import Column, Sheet
from ils.workers.pdf.prescription import RX_COLUMNS, frame_fields, lens_fields


def rx_row(label: str, eye: EyePrescription) -> list[str]:
    """One eye's row as a prescription is written: the axis with its degree sign and
    each prism component in prism dioptres with its base (``175°``,
    ``1.50Δ base in, 0.50Δ base up``)."""
    return [
        label,
        fmt.dioptres(eye.sphere),
        fmt.dioptres(eye.cylinder),
        fmt.axis_degrees(eye.axis),
        fmt.dioptres(eye.add),
        fmt.compound_prism(
            [(eye.prism, eye.prism_base), (eye.prism_vertical, eye.prism_vertical_base)]
        ),
        fmt.mm(eye.pd),
        fmt.mm(eye.height),
    ]


def draw_prescription(sheet: Sheet, order: OrderFacts) -> None:
    """Right then left eye, the way every lab form lists them, and the binocular PD."""
    sheet.heading("Prescription")
    sheet.table(RX_COLUMNS, [rx_row("R", order.right), rx_row("L", order.left)], size=9.5)
    if order.pd_binocular is not None:
        sheet.space(1.5 * mm)
        sheet.fields([("Binocular PD (mm)", fmt.mm(order.pd_binocular))], columns=2)


def render_order_sheet(data: OrderSheetData) -> bytes:
    """The order sheet as PDF bytes."""
    order = data.order
    sheet = Sheet(data.letterhead, "Order sheet", order.number, data.meta)
    sheet.fields(
        [
            ("Order number", order.number),
            ("Ordered", fmt.day(order.ordered_on)),
            ("Ordered by", order.practice_name),
            ("Due date", fmt.day(order.due_date)),
            ("Patient ref.", order.patient_reference),
            ("Status", fmt.words(order.status)),
        ]
    )
    sheet.heading("Lab")
    sheet.paragraph("\n".join([order.lab_name, *data.lab_address]))
    draw_prescription(sheet, order)
    sheet.heading("Lens")
    sheet.fields(lens_fields(order))
    sheet.heading("Frame")
    sheet.fields(frame_fields(order))
    sheet.heading("Price")
    price = fmt.money(order.price_cents, order.currency) if order.price_cents is not None else None
    sheet.table(
        [Column("Item", 4), Column("Qty", 0.6, "right"), Column("Price", 1.2, "right")],
        [
            [
                f"{fmt.words(order.lens.design)} lenses, {fmt.words(order.lens.material)} "
                f"{fmt.plain(order.lens.index)}, pair",
                "1",
                price or "to be quoted",
            ],
            ["Total (as quoted by the lab; VAT on the invoice)", "", price or "-"],
        ],
        bold_rows=frozenset({1}),
    )
    if order.notes:
        sheet.heading("Notes")
        sheet.paragraph(order.notes)
    return sheet.finish()
