"""What a DCS file carries beside the shape: thickness datasets and drill holes.

A rimless frame's lenses are drilled, and a lab's edger takes the holes from the file's
``DRILLE`` records; a thickness map (``STHKFMT``, ``CTHKFMT``... datasets, the same
layout as a tracing) tells the edger how thick the lens is along the outline. Neither
changes the shape, but a hole outside the lens or a thickness no lens has is a job
that would be spoilt at the bench, so both are read and checked here and their
findings join the tracing's.

Drill records, as DCS 3.x writes them: ``DRILLE=side;ref;x;y;diameter[;x2;y2;depth]``
with ``side`` R, L or B, ``ref`` the reference point (kept as written; ``C``, the
boxing centre, is the usual one), ``x``/``y`` the hole's centre in mm from it in the
DCS frame (seen from the front, x to the viewer's right), and ``x2``/``y2`` the end of
a slot. Thresholds, and why:

* Hole diameter between 0.8 and 6.0 mm: rimless screws need 1.0-2.2 mm holes and
  slots; below 0.8 no drill bit an edger carries, above 6 it is no mount hole.
* A hole (its whole circle, both ends of a slot) at least 0.5 mm inside the traced
  outline: a hole that breaks the edge splits the lens.
* Thickness between 0.5 and 25 mm at every point: a glazed lens is never thinner at
  its edge than about 1 mm (0.5 leaves room for drilled rimless edges) and a
  high-power lens stays under 25 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from ils.workers.oma.finding import Finding
from ils.workers.oma.measure import Measurements, points
from ils.workers.oma.records import NUMBER_RE, Eye, OmaDocument, Record
from ils.workers.oma.tracing import (
    TRACING_HEADER,
    Dataset,
    Tracing,
    TracingSet,
    datasets,
)

EYES: Final[tuple[Eye, ...]] = ("R", "L")
DRILL_LABEL: Final = "DRILLE"
DRILL_DIAMETER_MM: Final = (0.8, 6.0)
DRILL_EDGE_MARGIN_MM: Final = 0.5
THICKNESS_MM: Final = (0.5, 25.0)
#: Data labels a companion dataset may hold its values in (radii-style or heights).
VALUE_LABELS: Final = ("R", "Z")


@dataclass(frozen=True, slots=True)
class DrillHole:
    """One ``DRILLE`` record: a hole (or a slot, with an end) on one eye's lens, mm."""

    eye: Eye
    reference: str
    x_mm: float
    y_mm: float
    diameter_mm: float
    end: tuple[float, float] | None = None
    line: int = 0

    def as_dict(self) -> dict[str, float | str | None]:
        """For JSON (findings, the ticket)."""
        return {
            "eye": self.eye,
            "reference": self.reference,
            "x_mm": self.x_mm,
            "y_mm": self.y_mm,
            "diameter_mm": self.diameter_mm,
            "end": None if self.end is None else f"{self.end[0]:g},{self.end[1]:g}",
        }


@dataclass(frozen=True, slots=True)
class Companion:
    """A non-shape dataset (``STHKFMT``, ``ZFMT``...) for one eye, values in mm."""

    kind: str
    eye: Eye
    values_mm: tuple[float, ...]
    line: int = 0


def companion_datasets(doc: OmaDocument) -> tuple[list[Companion], list[Finding]]:
    """Every dataset other than the tracing, decoded (format 1) per eye.

    Never raises: a dataset that does not read is a finding (a warning: it does not
    make the shape wrong, but the lab should send the file again).
    """
    found: list[Companion] = []
    findings: list[Finding] = []
    grouped, _ = datasets(doc)
    for dataset in grouped:
        if dataset.kind == TRACING_HEADER:
            continue
        decoded = _decode(dataset)
        if isinstance(decoded, Finding):
            findings.append(decoded)
        else:
            found.extend(decoded)
    return found, findings


def drill_holes(doc: OmaDocument) -> tuple[list[DrillHole], list[Finding]]:
    """The file's ``DRILLE`` records as holes (one per eye; ``B`` gives both, the left
    one mirrored), and an error for each record that does not read."""
    holes: list[DrillHole] = []
    findings: list[Finding] = []
    for record in doc.all(DRILL_LABEL):
        hole = _hole(record)
        if isinstance(hole, Finding):
            findings.append(hole)
            continue
        if hole.eye == "R" and record.fields[0] == "B":
            holes.append(hole)
            end = None if hole.end is None else (-hole.end[0], hole.end[1])
            holes.append(
                DrillHole(
                    "L", hole.reference, -hole.x_mm, hole.y_mm, hole.diameter_mm, end, hole.line
                )
            )
        else:
            holes.append(hole)
    return holes, findings


def check_companions(
    doc: OmaDocument, tracing_set: TracingSet, measured: dict[Eye, Measurements]
) -> list[Finding]:
    """Findings about the thickness datasets and drill holes of the file."""
    companions, findings = companion_datasets(doc)
    for companion in companions:
        findings += _thickness(companion)
    holes, unreadable = drill_holes(doc)
    findings += unreadable
    for hole in holes:
        tracing = tracing_set.eye(hole.eye)
        box = measured.get(hole.eye)
        if isinstance(tracing, Tracing) and box is not None:
            findings += _hole_findings(hole, tracing, box)
        else:
            findings += _size_findings(hole)
    return findings


def _side(eye: Eye) -> str:
    return "right" if eye == "R" else "left"


def _decode(dataset: Dataset) -> list[Companion] | Finding:
    header = dataset.header
    fields = header.fields
    where = f"line {header.line}: the {header.label} dataset"
    if len(fields) < 4 or fields[3] not in ("R", "L", "B"):
        return Finding("warning", "dataset_invalid", f"{where} names no eye (R, L or B)")
    if fields[0] != "1" or not fields[1].isdigit():
        text = f"{where} is in format {fields[0]}, which this system does not read"
        return Finding("warning", "dataset_unsupported", text)
    count = int(fields[1])
    values: list[str] = []
    for label in VALUE_LABELS:
        values = dataset.values(label)
        if values:
            break
    if len(values) != count or not all(v.lstrip("-").isdigit() for v in values):
        text = f"{where} has {len(values)} values, not the {count} whole numbers it declares"
        return Finding("warning", "dataset_invalid", text)
    mm = tuple(int(v) / 100 for v in values)
    eyes: tuple[Eye, ...] = EYES if fields[3] == "B" else ("R",) if fields[3] == "R" else ("L",)
    return [Companion(header.label, eye, mm, header.line) for eye in eyes]


def _thickness(companion: Companion) -> list[Finding]:
    side = _side(companion.eye)
    low, high = min(companion.values_mm), max(companion.values_mm)
    what = f"{side} eye: {companion.kind} ({len(companion.values_mm)} points)"
    if "THK" not in companion.kind:
        return [Finding("info", "dataset_read", f"{what} read, {low:.2f} to {high:.2f} mm")]
    lo, hi = THICKNESS_MM
    if low < lo or high > hi:
        text = f"{what}: thickness runs {low:.2f} to {high:.2f} mm; a lens's lies"
        return [Finding("error", "thickness_implausible", f"{text} within {lo:g}-{hi:g} mm")]
    return [Finding("info", "thickness", f"{what}: thickness {low:.2f} to {high:.2f} mm")]


def _hole(record: Record) -> DrillHole | Finding:
    fields = record.fields
    where = f"line {record.line}: DRILLE"
    if len(fields) < 5 or fields[0] not in ("R", "L", "B"):
        return Finding("error", "drill_invalid", f"{where} needs side;ref;x;y;diameter")
    numbers = fields[2:5] + (fields[5:7] if len(fields) >= 7 and all(fields[5:7]) else ())
    if not all(NUMBER_RE.fullmatch(value) for value in numbers):
        return Finding("error", "drill_invalid", f"{where}: x, y and diameter must be numbers")
    x, y, diameter = (float(v) for v in fields[2:5])
    end = (float(numbers[3]), float(numbers[4])) if len(numbers) == 5 else None
    eye: Eye = "L" if fields[0] == "L" else "R"
    return DrillHole(eye, fields[1], x, y, diameter, end, record.line)


def _hole_text(hole: DrillHole) -> str:
    text = f"{_side(hole.eye)} eye: hole at x {hole.x_mm:+.2f}, y {hole.y_mm:+.2f} mm"
    text += f" ({hole.reference or 'C'}), diameter {hole.diameter_mm:.2f} mm"
    if hole.end is not None:
        text += f", slot to x {hole.end[0]:+.2f}, y {hole.end[1]:+.2f} mm"
    return text


def _size_findings(hole: DrillHole) -> list[Finding]:
    low, high = DRILL_DIAMETER_MM
    if not low <= hole.diameter_mm <= high:
        text = f"{_hole_text(hole)}: a drill hole is {low:g} to {high:g} mm across"
        return [Finding("error", "drill_size_implausible", text)]
    return [Finding("info", "drill_hole", _hole_text(hole))]


def _hole_findings(hole: DrillHole, tracing: Tracing, box: Measurements) -> list[Finding]:
    """Size, and the hole well inside the traced outline (positions from the boxing
    centre unless the record's reference says otherwise; kept as the file gives)."""
    findings = _size_findings(hole)
    if findings[0].severity == "error":
        return findings
    xy = np.asarray(points(tracing), dtype=np.float64)
    xy -= (box.center_x_mm, box.center_y_mm)
    ends = [(hole.x_mm, hole.y_mm)] + ([hole.end] if hole.end is not None else [])
    for px, py in ends:
        inside = _inside(xy, px, py)
        clearance = _distance_to_edge(xy, px, py) - hole.diameter_mm / 2
        if not inside or clearance < DRILL_EDGE_MARGIN_MM:
            where = "outside the lens" if not inside else f"{clearance:.2f} mm from the edge"
            text = f"{_hole_text(hole)}: {where}; a hole must lie at least"
            text += f" {DRILL_EDGE_MARGIN_MM:g} mm inside the outline"
            return [Finding("error", "drill_outside", text)]
    return findings


def _inside(xy: np.ndarray, px: float, py: float) -> bool:
    """Ray casting: whether the point is inside the closed polygon ``xy``."""
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(crosses & (px < at)) % 2)


def _distance_to_edge(xy: np.ndarray, px: float, py: float) -> float:
    """The shortest distance from the point to the polygon's edges."""
    a = xy
    b = np.roll(xy, -1, axis=0)
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = np.clip(((px - a[:, 0]) * ab[:, 0] + (py - a[:, 1]) * ab[:, 1]) / length2, 0.0, 1.0)
    nearest = a + ab * t[:, None]
    return float(math.sqrt(float(((nearest - (px, py)) ** 2).sum(axis=1).min())))
