"""The file's prescription and centration against the order's, per eye.

A DCS file sent with a job carries the prescription the lab will surface to (``SPH``,
``CYL``, ``AX``, ``ADD``, prism ``PRVM``/``PRVA``) and the centration it will edge to
(``IPD`` far and ``NPD`` near monocular PDs, ``SEGHT``/``OCHT`` fitting heights). A
value that differs from the order makes a wrong pair of spectacles, so each is an
error; a value the file does not give is not compared (tracing-only files carry none).

Tolerances are those of BS EN ISO 21987:2017 (mounted spectacle lenses), which takes
the power tolerances of ISO 8980-1 and ISO 8980-2: the file and the order should agree
exactly, and a difference within what the standard lets a finished pair deviate from
its prescription cannot change the lens the lab makes or its acceptance at
inspection. Powers are compared in minus-cylinder form, so a file and an order written
in opposite cylinder conventions still agree.

Prism: ``PRVM`` is the amount (prism dioptres), ``PRVA`` the base direction in degrees
in the DCS (TABO) frame, seen from the front: 0 is the viewer's right, so base in
(nasal) for the right eye and base out for the left, 90 base up. Both are turned into
horizontal (base in positive) and vertical (base up positive) components and each
component is compared, so 2 base in against no prism, or base up against base down,
is found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ils.workers.oma.finding import Finding, number, side
from ils.workers.oma.records import Eye, OmaDocument

#: BS EN ISO 21987:2017 clause 5.2 with ISO 8980-1:2017 Table 1: tolerance on the
#: power of each principal meridian, by the strongest meridian's absolute power:
#: (up to D, tolerance D).
MERIDIAN_TOLERANCE_D: Final = ((3.0, 0.12), (6.0, 0.12), (9.0, 0.12), (12.0, 0.18), (20.0, 0.25))
MERIDIAN_TOLERANCE_ABOVE_D: Final = 0.37
#: Same table: tolerance on the cylinder, by cylinder (up to D, tolerance D) for
#: meridians up to 9 D (the usual range); 0.25 D above 6 D of cylinder.
CYLINDER_TOLERANCE_D: Final = ((0.75, 0.09), (4.0, 0.12), (6.0, 0.18))
CYLINDER_TOLERANCE_ABOVE_D: Final = 0.25
#: BS EN ISO 21987:2017 Table 2 (ISO 8980-1 Table 3): tolerance on the cylinder axis
#: in degrees, by cylinder power (up to D, tolerance degrees); none below 0.12 D.
AXIS_TOLERANCE_DEG: Final = ((0.25, 16.0), (0.50, 9.0), (0.75, 6.0), (1.50, 4.0))
AXIS_TOLERANCE_ABOVE_DEG: Final = 3.0
AXIS_FROM_D: Final = 0.12
#: ISO 8980-2:2017 Table 1 (cited by BS EN ISO 21987): addition power, up to 4 D / above.
ADD_TOLERANCE_D: Final = (4.0, 0.12)
ADD_TOLERANCE_ABOVE_D: Final = 0.18
#: BS EN ISO 21987:2017 Table 4 (ISO 8980-1 Table 4): prescribed prism, per
#: component, by amount (up to prism dioptres, tolerance).
PRISM_TOLERANCE: Final = ((2.0, 0.25), (10.0, 0.37))
PRISM_TOLERANCE_ABOVE: Final = 0.50
#: BS EN ISO 21987:2017 clause 5.5: fitting point of a progressive or segment of a
#: multifocal, horizontal (each monocular PD) and vertical (fitting height), +/- mm.
CENTRATION_TOLERANCE_MM: Final = 1.0
#: Below this a cylinder or prism is none at all.
NONE_D: Final = 0.005
SLACK: Final = 1e-6
#: Fitting height labels, the segment's first (a multifocal is fitted to it).
HEIGHT_LABELS: Final = ("SEGHT", "OCHT")


@dataclass(frozen=True)
class OrderRx:
    """One eye's prescription and centration on the order (D, degrees, prism D, mm).

    ``prism_in`` is the horizontal prism, base in positive; ``prism_up`` the vertical,
    base up positive; ``pd`` the monocular distance PD; ``height`` the fitting height.
    """

    sphere: float | None = None
    cylinder: float | None = None
    axis: float | None = None
    add: float | None = None
    prism_in: float | None = None
    prism_up: float | None = None
    pd: float | None = None
    height: float | None = None


def prism_component(amount: float | None, base: str | None) -> tuple[float, float]:
    """(base in, base up) components of a prism with its base named in/out/up/down."""
    if amount is None or base is None:
        return 0.0, 0.0
    return {
        "in": (amount, 0.0),
        "out": (-amount, 0.0),
        "up": (0.0, amount),
        "down": (0.0, -amount),
    }.get(base, (0.0, 0.0))


def minus_cylinder(
    sphere: float, cylinder: float, axis: float | None
) -> tuple[float, float, float | None]:
    """The same lens written with a minus (or no) cylinder: transpose a plus one."""
    if cylinder > 0:
        turned = None if axis is None else (axis + 90) % 180 or 180.0  # axes run 1 to 180
        return sphere + cylinder, -cylinder, turned
    return sphere, cylinder, axis


def meridian_tolerance(sphere: float, cylinder: float) -> float:
    """ISO 8980-1 Table 1 tolerance for the meridians of this (minus-cylinder) lens."""
    return _band(
        max(abs(sphere), abs(sphere + cylinder)), MERIDIAN_TOLERANCE_D, MERIDIAN_TOLERANCE_ABOVE_D
    )


def cylinder_tolerance(cylinder: float) -> float:
    """ISO 8980-1 Table 1 tolerance on a cylinder of this power."""
    return _band(abs(cylinder), CYLINDER_TOLERANCE_D, CYLINDER_TOLERANCE_ABOVE_D)


def axis_tolerance(cylinder: float) -> float:
    """BS EN ISO 21987 Table 2 tolerance on the axis of a cylinder of this power."""
    return _band(abs(cylinder), AXIS_TOLERANCE_DEG, AXIS_TOLERANCE_ABOVE_DEG)


def prism_tolerance(amount: float) -> float:
    """BS EN ISO 21987 tolerance on a prescribed prism component of this amount."""
    return _band(abs(amount), PRISM_TOLERANCE, PRISM_TOLERANCE_ABOVE)


def add_tolerance(add: float) -> float:
    """ISO 8980-2 tolerance on an addition of this power."""
    return ADD_TOLERANCE_D[1] if abs(add) <= ADD_TOLERANCE_D[0] else ADD_TOLERANCE_ABOVE_D


def _band(value: float, table: tuple[tuple[float, float], ...], above: float) -> float:
    for limit, tolerance in table:
        if value <= limit + SLACK:
            return tolerance
    return above


def prescription(
    doc: OmaDocument,
    rx: Mapping[Eye, OrderRx] | Mapping[str, OrderRx],
    *,
    binocular_pd: float | None = None,
) -> list[Finding]:
    """Every eye's comparison, right then left; then, for an order that gives only a
    binocular PD, the sum of the file's monocular ones against it."""
    findings: list[Finding] = []
    for eye in ("R", "L"):
        order = rx.get(eye)
        if isinstance(order, OrderRx):
            findings += _eye(doc, eye, order)
    monocular = any(isinstance(o, OrderRx) and o.pd is not None for o in rx.values())
    if binocular_pd is not None and not monocular:
        findings += _binocular(doc, binocular_pd)
    return findings


def _binocular(doc: OmaDocument, ordered: float) -> list[Finding]:
    """IPD right + left against the order's binocular PD, within both eyes' tolerance."""
    right, left = number(doc, "IPD", "R"), number(doc, "IPD", "L")
    if not isinstance(right, float) or not isinstance(left, float):
        return []
    total = right + left
    text = f"the file's PD {total:.1f} mm (IPD {right:g} + {left:g}), the order's {ordered:.1f} mm"
    if abs(total - ordered) > 2 * CENTRATION_TOLERANCE_MM + SLACK:
        return [Finding("error", "rx_pd_mismatch", f"{text} differ")]
    return [Finding("info", "rx_centration_match", f"{text}: matches")]


def _eye(doc: OmaDocument, eye: Eye, order: OrderRx) -> list[Finding]:
    values: dict[str, float | None] = {}
    for label in ("SPH", "CYL", "AX", "ADD", "PRVM", "PRVA", "IPD", "NPD", *HEIGHT_LABELS):
        value = number(doc, label, eye)
        if isinstance(value, Finding):
            return [Finding("error", "rx_unreadable", value.message)]
        values[label] = value
    findings = _powers(eye, order, values)
    findings += _add(eye, order, values["ADD"])
    findings += _prism(eye, order, values["PRVM"], values["PRVA"])
    findings += _centration(eye, order, values)
    findings += _near_pd(eye, values["IPD"], values["NPD"])
    return findings


def _near_pd(eye: Eye, far: float | None, near: float | None) -> list[Finding]:
    """The order holds no near PD; the file's must at least be below its far PD (the
    eyes converge for near work), else the near centration was entered wrongly."""
    if far is None or near is None or near <= far + SLACK:
        return []
    text = f"{side(eye)} eye: the file's near PD {near:.1f} mm (NPD) is wider than its"
    return [Finding("warning", "rx_npd_implausible", f"{text} distance PD {far:.1f} mm (IPD)")]


def _powers(eye: Eye, order: OrderRx, values: dict[str, float | None]) -> list[Finding]:
    """SPH/CYL/AX against the order's, in minus-cylinder form.

    An order without a cylinder is a spherical lens; an order without a sphere has its
    sphere not compared; a file without SPH and CYL is not compared.
    """
    sphere, cylinder, axis = values["SPH"], values["CYL"], values["AX"]
    if order.sphere is None and order.cylinder is None:
        return []
    if sphere is None and cylinder is None:
        return []
    mine = minus_cylinder(sphere or 0.0, cylinder or 0.0, axis)
    theirs = minus_cylinder(order.sphere or 0.0, order.cylinder or 0.0, order.axis)
    problems: list[tuple[str, str]] = []
    power = meridian_tolerance(theirs[0], theirs[1])
    if order.sphere is not None and abs(mine[0] - theirs[0]) > power + SLACK:
        problems.append(("sphere", "spheres"))
    if abs(mine[1] - theirs[1]) > cylinder_tolerance(theirs[1]) + SLACK:
        problems.append(("cylinder", "cylinders"))
    # No axis tolerance below 0.12 D of cylinder (BS EN ISO 21987 Table 2).
    has_cylinder = abs(mine[1]) > NONE_D and abs(theirs[1]) >= AXIS_FROM_D - SLACK
    if has_cylinder and mine[2] is not None and theirs[2] is not None:
        apart = abs(mine[2] - theirs[2]) % 180
        if min(apart, 180 - apart) > axis_tolerance(theirs[1]) + SLACK:
            problems.append(("axis", "axes"))
    both = f"the file's {_rx_text(mine)}, the order's {_rx_text(theirs)}"
    if not problems:
        text = f"{side(eye)} eye: the prescription matches the order ({both}"
        return [Finding("info", "rx_match", f"{text}, in minus-cylinder form)")]
    return [
        Finding("error", f"rx_{part}_mismatch", f"{side(eye)} eye: the {name} differ ({both})")
        for part, name in problems
    ]


def _add(eye: Eye, order: OrderRx, add: float | None) -> list[Finding]:
    if add is None or order.add is None:
        return []
    text = f"{side(eye)} eye: the file's addition {add:+.2f}, the order's {order.add:+.2f}"
    if abs(add - order.add) > add_tolerance(order.add) + SLACK:
        return [Finding("error", "rx_add_mismatch", f"{text} differ")]
    return [Finding("info", "rx_add_match", f"{text}: matches")]


def file_prism(eye: Eye, amount: float, angle: float | None) -> tuple[float, float]:
    """The file's prism as (base in, base up) components (see the module docstring)."""
    radians = math.radians(angle or 0.0)
    across = amount * math.cos(radians)
    return (across if eye == "R" else -across), amount * math.sin(radians)


def _prism_text(prism_in: float, prism_up: float) -> str:
    parts = []
    if abs(prism_in) > NONE_D:
        parts.append(f"{abs(prism_in):.2f}Δ base {'in' if prism_in > 0 else 'out'}")
    if abs(prism_up) > NONE_D:
        parts.append(f"{abs(prism_up):.2f}Δ base {'up' if prism_up > 0 else 'down'}")
    return " and ".join(parts) or "no prism"


def _prism(eye: Eye, order: OrderRx, amount: float | None, angle: float | None) -> list[Finding]:
    """Both components; a file without ``PRVM`` is not compared (it gives no prism)."""
    if amount is None:
        return []
    mine = file_prism(eye, amount, angle)
    theirs = (order.prism_in or 0.0, order.prism_up or 0.0)
    text = f"{side(eye)} eye: the file's prism {_prism_text(*mine)}, the order's"
    text += f" {_prism_text(*theirs)}"
    for got, wanted in zip(mine, theirs, strict=True):
        if abs(got - wanted) > prism_tolerance(wanted) + SLACK:
            return [Finding("error", "rx_prism_mismatch", f"{text} differ")]
    return [Finding("info", "rx_prism_match", f"{text}: matches")]


def _centration(eye: Eye, order: OrderRx, values: dict[str, float | None]) -> list[Finding]:
    """Monocular distance PD (``IPD``) and fitting height (``SEGHT``, else ``OCHT``)."""
    findings: list[Finding] = []
    height_label = next((label for label in HEIGHT_LABELS if values[label] is not None), None)
    for label, name, ordered in (
        ("IPD", "monocular PD", order.pd),
        (height_label, "fitting height", order.height),
    ):
        value = values[label] if label is not None else None
        if value is None or ordered is None:
            continue
        text = f"{side(eye)} eye: the file's {name} {value:.1f} mm ({label}), the order's"
        text += f" {ordered:.1f} mm"
        if abs(value - ordered) > CENTRATION_TOLERANCE_MM + SLACK:
            code = "rx_pd_mismatch" if label == "IPD" else "rx_height_mismatch"
            findings.append(Finding("error", code, f"{text} differ"))
        else:
            findings.append(Finding("info", "rx_centration_match", f"{text}: matches"))
    return findings


def _rx_text(rx: tuple[float, float, float | None]) -> str:
    """As a lab writes it: ``+1.00 / -0.50 x 90°``, or ``+1.25 DS`` without cylinder."""
    sphere, cylinder, axis = rx
    if abs(cylinder) <= NONE_D:
        return f"{sphere:+.2f} DS"
    axis_text = "" if axis is None else f" x {axis:g}°"
    return f"{sphere:+.2f} / {cylinder:+.2f}{axis_text}"
