"""The frame's shape on the work ticket, from its tracing or else its box.

Drill holes of a rimless frame are drawn on the shape (numbered ``H1``... and listed
with their positions by the ticket), and a tracing that was attached but refused is
named in the note under the drawing instead of "no tracing attached".

The interface with the OMA worker is ``orders.frame_outline``: the right lens as
``(x, y)`` points in millimetres around its boxing centre, x towards the nose, y up,
seen from the front. :func:`clean_outline` checks such a list (what a later parser or
an old row may hold) and :func:`draw_frame` draws both lenses: the right one as
traced on the left of the drawing (as the wearer is seen), the left one mirrored,
their boxing centres ``A + DBL`` apart, to scale when the page allows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.units import mm

from ils.workers.pdf.data import FrameSpec
from ils.workers.pdf.layout import BOLD, FONT, GREY, Sheet

#: A lens is never wider or deeper than this (mm); anything beyond is a bad tracing.
MAX_HALF_SIZE_MM = 60.0
MIN_POINTS = 8
DRAWING_HEIGHT = 40 * mm
NOTE_CHARS = 90
#: Drawn holes are never smaller than this (points), so a 1 mm hole stays visible.
MIN_HOLE_RADIUS = 1.2

Outline = tuple[tuple[float, float], ...]


def clean_outline(raw: Any) -> Outline | None:
    """``raw`` as an outline, or ``None`` when it is missing or unusable.

    Usable: at least :data:`MIN_POINTS` pairs of finite numbers within
    :data:`MAX_HALF_SIZE_MM` of the centre, enclosing some area.
    """
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) < MIN_POINTS:
        return None
    points: list[tuple[float, float]] = []
    for point in raw:
        if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
            return None
        x, y = point
        if isinstance(x, bool) or isinstance(y, bool):
            return None
        if not isinstance(x, int | float) or not isinstance(y, int | float):
            return None
        fx, fy = float(x), float(y)
        if not (math.isfinite(fx) and math.isfinite(fy)):
            return None
        if abs(fx) > MAX_HALF_SIZE_MM or abs(fy) > MAX_HALF_SIZE_MM:
            return None
        points.append((fx, fy))
    if abs(_area(points)) < 1.0:
        return None
    return tuple(points)


def _area(points: Sequence[tuple[float, float]]) -> float:
    """Signed area (shoelace): zero for a line or a point."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2


def box_outline(width: float, depth: float) -> Outline:
    """The boxing rectangle as an outline (drawn when there is no tracing)."""
    w, d = width / 2, depth / 2
    return ((-w, -d), (w, -d), (w, d), (-w, d))


def draw_frame(
    sheet: Sheet, frame: FrameSpec, *, x: float | None = None, width: float | None = None
) -> None:
    """Both lenses from the tracing, or the boxed sizes; nothing without either.

    Drawn below the cursor across ``width`` points from ``x`` (the content width by
    default), at 1:1 when that fits, else scaled down (the scale is printed).
    """
    traced = frame.outline is not None
    if frame.outline is not None:
        right = frame.outline
    elif frame.box_a is not None and frame.box_b is not None:
        right = box_outline(float(frame.box_a), float(frame.box_b))
    else:
        return
    xs = [x for x, _ in right]
    ys = [y for _, y in right]
    lens_width = max(xs) - min(xs)
    lens_depth = max(ys) - min(ys)
    box_a = float(frame.box_a) if frame.box_a is not None else lens_width
    dbl = float(frame.dbl) if frame.dbl is not None else 18.0
    centre_distance = box_a + dbl
    total_width = centre_distance + lens_width
    region_x = sheet.left if x is None else x
    region_width = sheet.content_width if width is None else width
    available = region_width - 10 * mm
    scale = min(mm, available / total_width, (DRAWING_HEIGHT - 12 * mm) / max(lens_depth, 1.0))
    sheet.room(DRAWING_HEIGHT)
    c = sheet.canvas
    top = sheet.y
    mid_y = top - DRAWING_HEIGHT / 2
    mid_x = region_x + region_width / 2
    right_cx = mid_x - centre_distance * scale / 2
    left_cx = mid_x + centre_distance * scale / 2
    c.setStrokeColor(sheet.color)
    c.setLineWidth(1.1)
    if not traced:
        c.setDash(3, 2)
    # Seen from the front: the right lens's nasal side (+x) points at the middle.
    for cx, mirror in ((right_cx, 1.0), (left_cx, -1.0)):
        path = c.beginPath()
        first = True
        for x, y in right:
            px, py = cx + mirror * x * scale, mid_y + y * scale
            if first:
                path.moveTo(px, py)
                first = False
            else:
                path.lineTo(px, py)
        path.close()
        c.drawPath(path, stroke=1, fill=0)
    c.setDash()
    _draw_holes(sheet, frame, {"R": (right_cx, 1.0), "L": (left_cx, -1.0)}, mid_y, scale)
    c.setStrokeColor(GREY)
    c.setLineWidth(0.4)
    for cx in (right_cx, left_cx):
        c.line(cx - 2 * mm, mid_y, cx + 2 * mm, mid_y)
        c.line(cx, mid_y - 2 * mm, cx, mid_y + 2 * mm)
    c.setFont(BOLD, 8)
    c.setFillColor(colors.black)
    c.drawCentredString(right_cx, top - 4 * mm, "R")
    c.drawCentredString(left_cx, top - 4 * mm, "L")
    c.setFont(FONT, 7.5)
    c.setFillColor(GREY)
    note = "traced shape" if traced else "boxed size only (no tracing attached)"
    if frame.tracing_note:
        # Attached but refused: say so, never "no tracing attached".
        note = frame.tracing_note[:NOTE_CHARS]
    scale_note = "1:1" if scale >= mm * 0.999 else f"scale {scale / mm:.2f}:1"
    c.drawCentredString(
        mid_x,
        top - DRAWING_HEIGHT + 1.5 * mm,
        f"{note} · {scale_note}",
    )
    c.setFillColor(colors.black)
    sheet.y = top - DRAWING_HEIGHT


def hole_label(index: int) -> str:
    """How the drawing and the list below it name a hole: H1, H2..."""
    return f"H{index}"


def _draw_holes(
    sheet: Sheet,
    frame: FrameSpec,
    centres: dict[str, tuple[float, float]],
    mid_y: float,
    scale: float,
) -> None:
    """Each drill hole as a filled circle at its position, numbered as listed."""
    c = sheet.canvas
    c.setFont(FONT, 5.5)
    for index, hole in enumerate(frame.holes, start=1):
        cx, mirror = centres.get(hole.eye, centres["R"])
        px, py = cx + mirror * hole.x_mm * scale, mid_y + hole.y_mm * scale
        c.setFillColor(sheet.color)
        c.circle(px, py, max(hole.diameter_mm / 2 * scale, MIN_HOLE_RADIUS), stroke=0, fill=1)
        c.setFillColor(colors.black)
        c.drawCentredString(px, py + 1.6 * mm, hole_label(index))
    c.setFillColor(colors.black)
