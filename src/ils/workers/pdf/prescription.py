"""The prescription table and lens / frame fields shared by the ticket and order sheet
(and the per-eye table layout the examination form's tables share with them)."""

from __future__ import annotations

from ils.domain.lens_options import label
from ils.workers.pdf import fmt
from ils.workers.pdf.data import EyePrescription, OrderFacts
from ils.workers.pdf.layout import Column, Sheet


def eye_table(*figures: tuple[str, float]) -> tuple[Column, ...]:
    """The columns of a per-eye table: the eye (``R``, then ``L``), then its figures,
    each ``(heading, width)`` and right-aligned, as every clinical form sets them."""
    return (Column("Eye", 0.8), *(Column(heading, width, "right") for heading, width in figures))


#: The powers a prescription and an examination's refraction both print, alike.
POWERS = (("Sphere", 1.0), ("Cylinder", 1.0), ("Axis", 0.8), ("Add", 0.9))
RX_COLUMNS = eye_table(*POWERS, ("Prism / base", 1.5), ("PD", 0.8), ("Seg / fit ht", 1.1))


def option_label(code: str | None) -> str:
    """A lens type, coating or tint code as documents print it (``-`` when absent)."""
    return fmt.BLANK if code is None else label(code)


def _prism(eye: EyePrescription) -> str:
    """Every prism component of one eye with the prism sign and its base: a single
    prism reads ``1.50Δ base in`` exactly like one component of a compound prism."""
    return fmt.compound_prism(
        ((eye.prism, eye.prism_base), (eye.prism_vertical, eye.prism_vertical_base))
    )


def rx_row(label: str, eye: EyePrescription) -> list[str]:
    """One eye's row of the prescription table."""
    return [
        label,
        fmt.dioptres(eye.sphere),
        fmt.dioptres(eye.cylinder),
        fmt.axis_degrees(eye.axis),
        fmt.dioptres(eye.add),
        _prism(eye),
        fmt.mm(eye.pd),
        fmt.mm(eye.height),
    ]


def draw_prescription(sheet: Sheet, order: OrderFacts) -> None:
    """Right then left eye, the way every lab form lists them, and the binocular PD."""
    sheet.heading("Prescription")
    sheet.table(RX_COLUMNS, [rx_row("R", order.right), rx_row("L", order.left)], size=9.5)
    if order.pd_binocular is not None:
        sheet.space(1.5 * 2.83)
        sheet.fields([("Binocular PD (mm)", fmt.mm(order.pd_binocular))], columns=2)


def lens_fields(order: OrderFacts) -> list[tuple[str, str]]:
    """Design, material, index, coatings, tint."""
    lens = order.lens
    return [
        ("Design", fmt.words(lens.design)),
        ("Material", option_label(lens.material)),
        ("Index", fmt.plain(lens.index)),
        ("Tint", option_label(lens.tint) if lens.tint else "None"),
        ("Coatings", ", ".join(option_label(c) for c in lens.coatings) or "None"),
    ]


def frame_fields(order: OrderFacts) -> list[tuple[str, str]]:
    """The frame and its boxed measurements in millimetres."""
    frame = order.frame
    name = " ".join(v for v in (frame.brand, frame.model) if v) or fmt.BLANK
    return [
        ("Frame", name),
        ("Colour", fmt.words(frame.colour)),
        ("A (box width)", fmt.mm(frame.box_a)),
        ("B (box depth)", fmt.mm(frame.box_b)),
        ("DBL (bridge)", fmt.mm(frame.dbl)),
        ("ED", fmt.mm(frame.ed)),
    ]
