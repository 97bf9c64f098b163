"""The order sheet: the practice's record of what it ordered, from whom, at what price.

Filed by the practice with the patient's record, so the patient is named only by the
practice's reference: the sheet also goes to the lab, which needs no more.
"""

from __future__ import annotations

from ils.workers.pdf import fmt
from ils.workers.pdf.data import OrderSheetData
from ils.workers.pdf.layout import Column, Sheet
from ils.workers.pdf.prescription import draw_prescription, frame_fields, lens_fields


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
