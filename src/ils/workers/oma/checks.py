"""Findings: what a lab should know about a tracing file before it cuts lenses.

Each check turns one question into :class:`Finding` values: ``error`` (do not use the
file as it is), ``warning`` (look before using it), ``info`` (checked, fine). Findings
are stored on the order, seen by its two companies only, and never logged, so their
messages give numbers.

Thresholds, and why:

* Spike: a radius farther than ``max(0.25, 0.5 * (360 / N) ** 2)`` mm from the mean of
  its two neighbours. On a smooth outline that distance is the curvature term, which
  shrinks with the square of the angular step: the real files reach 0.045 mm at 360
  points and 0.01 at 1000; a rounded rectangle with 1 mm corners reaches 0.25 and
  0.05. So 0.5 mm at 360 points leaves room for sharp corners, and below 0.25 mm a
  one-point bump is tracing noise that an edger does not see.
* Open shape: the last radius more than ``1 * max(1, 360 / N)`` mm from the first.
  Neighbouring radii differ by under 0.3 mm in the real files (0.75 for that
  rectangle at 360 points); a gap of 1 mm is a tracing that did not come round.
* Declared values (HBOX, VBOX, FED, CIRC) within 0.1 mm once the measurement is
  rounded to the decimals the file wrote (``FED=52`` is 52.33 rounded); the order's frame within 0.5
  mm (the order is typed by hand, from a frame's marked sizes); the prescription and
  centration with the tolerances of BS EN ISO 21987 (see :mod:`ils.workers.oma.rx`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

import numpy as np

from ils.workers.oma.finding import Finding, Severity, number
from ils.workers.oma.measure import Measurements
from ils.workers.oma.records import Eye, OmaDocument
from ils.workers.oma.rx import OrderRx, prescription
from ils.workers.oma.tracing import Tracing, TracingSet, UnsupportedTracing

__all__ = ["Finding", "OrderFrame", "OrderRx", "Severity", "Status", "check", "status"]

T = TypeVar("T")
#: Per-eye values keyed ``R``/``L`` (typed as :data:`Eye` or as plain ``str``).
PerEye = Mapping[Eye, T] | Mapping[str, T]
Status = Literal["ok", "warnings", "errors"]

EYES: Final[tuple[Eye, ...]] = ("R", "L")
SPIKE_MM_AT_360: Final = 0.5
SPIKE_FLOOR_MM: Final = 0.25
SPIKES_LISTED: Final = 3
OPEN_MM_AT_360: Final = 1.0
DECLARED_TOLERANCE_MM: Final = 0.1
EYESIZE_TOLERANCE_MM: Final = 0.5
ORDER_TOLERANCE_MM: Final = 0.5
#: Rounding slack, so 0.1 mm apart counts as within 0.1 mm.
SLACK: Final = 1e-6
#: Plausible lens sizes in mm: (low, high) for A, B and the radii; ED's upper bound.
A_RANGE: Final = (20.0, 80.0)
B_RANGE: Final = (10.0, 65.0)
RADIUS_RANGE: Final = (5.0, 45.0)
ED_MAX: Final = 85.0
#: File label -> (what it is, the measurement it declares).
DECLARED: Final = (
    ("HBOX", "boxed width A", "a_mm"),
    ("VBOX", "boxed height B", "b_mm"),
    ("FED", "effective diameter ED", "ed_mm"),
    ("CIRC", "circumference", "circumference_mm"),
)


@dataclass(frozen=True)
class OrderFrame:
    """The order's frame sizes in mm, where the order gives them."""

    box_a: float | None = None
    box_b: float | None = None
    ed: float | None = None
    dbl: float | None = None


def check(
    doc: OmaDocument,
    tracing_set: TracingSet,
    measurements: PerEye[Measurements],
    frame: OrderFrame | None = None,
    rx: PerEye[OrderRx] | None = None,
    *,
    binocular_pd: float | None = None,
) -> list[Finding]:
    """Every finding about the file, the most serious kinds of check first."""
    findings = [Finding("error", "tracing_invalid", str(error)) for error in tracing_set.errors]
    findings += _presence(doc, tracing_set)
    for eye in EYES:
        tracing = tracing_set.eye(eye)
        if isinstance(tracing, Tracing):
            findings += _shape(tracing)
        found = measurements.get(eye)
        if found is not None:
            findings += _sizes(eye, found)
            findings += _declared(doc, eye, found)
            if frame is not None:
                findings += _order_frame(eye, found, frame)
    if frame is not None:
        findings += _bridge(doc, frame)
    if rx is not None:
        findings += prescription(doc, rx, binocular_pd=binocular_pd)
    return findings


def status(findings: list[Finding]) -> Status:
    """``errors`` if any finding is an error, else ``warnings`` if any warns, else ``ok``."""
    severities = {finding.severity for finding in findings}
    if "error" in severities:
        return "errors"
    return "warnings" if "warning" in severities else "ok"


def spike_threshold_mm(count: int) -> float:
    """How far from its neighbours' mean a radius may be (see the module docstring)."""
    return max(SPIKE_FLOOR_MM, SPIKE_MM_AT_360 * (360 / count) ** 2)


def _side(eye: Eye) -> str:
    return "right" if eye == "R" else "left"


def _presence(doc: OmaDocument, tracing_set: TracingSet) -> list[Finding]:
    """The eyes ``DO`` asks for have tracings we can read."""
    findings: list[Finding] = []
    wanted = _wanted_eyes(doc)
    for eye in EYES:
        tracing = tracing_set.eye(eye)
        if isinstance(tracing, UnsupportedTracing):
            # An error, not a warning: no shape can be read, so none may be used.
            text = f"the {_side(eye)} eye's tracing is in {tracing.reason}: no shape read"
            findings.append(Finding("error", "tracing_unsupported", text))
        elif tracing is None and eye in wanted:
            text = f"the file asks for {_do_text(wanted)} (DO) but has no tracing for the"
            findings.append(Finding("error", "tracing_missing", f"{text} {_side(eye)} eye"))
    if not wanted and tracing_set.right is None and tracing_set.left is None:
        findings.append(Finding("warning", "tracing_none", "the file holds no tracing"))
    return findings


def _wanted_eyes(doc: OmaDocument) -> tuple[Eye, ...]:
    record = doc.first("DO")
    value = record.fields[0] if record is not None else ""
    if value == "B":
        return EYES
    if value == "R":
        return ("R",)
    return ("L",) if value == "L" else ()


def _do_text(wanted: tuple[Eye, ...]) -> str:
    return "both eyes" if len(wanted) == 2 else f"the {_side(wanted[0])} eye"


def _shape(tracing: Tracing) -> list[Finding]:
    """A closed outline without spikes."""
    radii = tracing.radii_mm
    n = len(radii)
    side = _side(tracing.eye)
    findings: list[Finding] = []
    gap = abs(radii[-1] - radii[0])
    is_open = n > 1 and gap > OPEN_MM_AT_360 * max(1.0, 360 / n)
    if is_open:
        findings.append(
            Finding(
                "warning",
                "shape_open",
                f"{side} eye: the last radius is {gap:.2f} mm from the first, so the"
                " outline does not close (the tracing may have stopped early or slipped)",
            )
        )
    limit = spike_threshold_mm(n)
    spikes = _spikes(radii, limit, skip_ends=is_open)
    for i, off in spikes[:SPIKES_LISTED]:
        text = f"{side} eye: the radius at {tracing.angle(i):.1f}° is {off:.2f} mm off the mean"
        text += f" of its neighbours (more than {limit:.2f} mm): a spike in the tracing"
        findings.append(Finding("error", "shape_spike", text))
    if len(spikes) > SPIKES_LISTED:
        text = f"{side} eye: {len(spikes) - SPIKES_LISTED} more spikes like these"
        findings.append(Finding("error", "shape_spike", text))
    findings += _radii_range(tracing)
    return findings


def _spikes(radii: tuple[float, ...], limit: float, *, skip_ends: bool) -> list[tuple[int, float]]:
    """Each spike's worst radius and its distance from its neighbours' mean.

    A radius off by ``d`` also pulls its two neighbours ``d / 2`` off theirs, so
    neighbouring radii over the limit are one spike, named by the worst of them.
    ``skip_ends``: an open shape's first and last radii are not compared across the gap.
    """
    n = len(radii)
    values = np.asarray(radii, dtype=np.float64)
    around = np.concatenate((values[-1:], values, values[:1]))  # the shape is closed
    offs = np.abs(values - (around[:-2] + around[2:]) / 2)
    if skip_ends:
        offs[[0, -1]] = 0.0
    over = [(int(i), float(offs[i])) for i in np.flatnonzero(offs > limit)]
    runs: list[list[tuple[int, float]]] = []
    for i, off in over:
        if runs and i - runs[-1][-1][0] == 1:
            runs[-1].append((i, off))
        else:
            runs.append([(i, off)])
    if len(runs) > 1 and runs[0][0][0] == 0 and runs[-1][-1][0] == n - 1:
        runs[0] = runs.pop() + runs[0]  # a spike across radius 0
    return [max(run, key=lambda item: item[1]) for run in runs]


def _radii_range(tracing: Tracing) -> list[Finding]:
    low, high = min(tracing.radii_mm), max(tracing.radii_mm)
    if RADIUS_RANGE[0] <= low and high <= RADIUS_RANGE[1]:
        return []
    text = f"{_side(tracing.eye)} eye: the radii run from {low:.2f} to {high:.2f} mm; a lens's"
    text += f" lie between {RADIUS_RANGE[0]:.0f} and {RADIUS_RANGE[1]:.0f} mm"
    return [Finding("error", "size_implausible", text)]


def _sizes(eye: Eye, found: Measurements) -> list[Finding]:
    findings: list[Finding] = []
    for name, value, (low, high) in (
        ("boxed width A", found.a_mm, A_RANGE),
        ("boxed height B", found.b_mm, B_RANGE),
        ("effective diameter ED", found.ed_mm, (0.0, ED_MAX)),
    ):
        if not low <= value <= high:
            text = f"{_side(eye)} eye: the {name} is {value:.2f} mm, outside the plausible"
            findings.append(Finding("error", "size_implausible", f"{text} {low:.0f}-{high:.0f} mm"))
    return findings


_number = number


def _declared(doc: OmaDocument, eye: Eye, found: Measurements) -> list[Finding]:
    """Measured against what the file declares (and its nominal eye size)."""
    findings: list[Finding] = []
    side = _side(eye)
    for label, name, attribute in DECLARED:
        declared = _number(doc, label, eye)
        if isinstance(declared, Finding):
            findings.append(declared)
            continue
        if declared is None:
            continue
        measured: float = getattr(found, attribute)
        # At the file's precision: FED=52 against 52.33 measured is rounding.
        decimals = _decimals(doc.eye_value(label, eye) or "")
        difference = abs(round(measured, decimals) - declared)
        text = f"{side} eye: {name} measured {measured:.2f} mm, the file declares {label}"
        if difference > DECLARED_TOLERANCE_MM + SLACK:
            text += f" {declared:.2f} mm ({difference:.2f} mm apart)"
            findings.append(Finding("warning", "declared_mismatch", text))
        else:
            findings.append(Finding("info", "declared_match", f"{text} {declared:.2f}: matches"))
    eyesize = _number(doc, "EYESIZ", eye)
    if isinstance(eyesize, Finding):
        findings.append(eyesize)
    elif eyesize is not None:
        close = abs(found.a_mm - eyesize) <= EYESIZE_TOLERANCE_MM + SLACK
        verdict = "close to" if close else "unlike"
        text = f"{side} eye: boxed width A {found.a_mm:.2f} mm is {verdict} the frame's marked"
        findings.append(Finding("info", "eyesize", f"{text} eye size {eyesize:g} (EYESIZ)"))
    return findings


def _decimals(text: str) -> int:
    """How many decimals a declared value was written with (``52`` 0, ``52.3`` 1)."""
    _, point, fraction = text.partition(".")
    return len(fraction) if point else 0


def _order_frame(eye: Eye, found: Measurements, frame: OrderFrame) -> list[Finding]:
    findings: list[Finding] = []
    for name, ordered, measured in (
        ("boxed width A", frame.box_a, found.a_mm),
        ("boxed height B", frame.box_b, found.b_mm),
        ("effective diameter ED", frame.ed, found.ed_mm),
    ):
        if ordered is not None:
            findings.append(_against_order(f"{_side(eye)} eye: {name}", measured, ordered))
    return findings


def _bridge(doc: OmaDocument, frame: OrderFrame) -> list[Finding]:
    if frame.dbl is None:
        return []
    dbl = _number(doc, "DBL", "R")
    if isinstance(dbl, Finding):
        return [dbl]
    if dbl is None:
        return []
    return [_against_order("bridge DBL in the file", dbl, frame.dbl)]


def _against_order(what: str, value: float, ordered: float) -> Finding:
    difference = abs(value - ordered)
    text = f"{what} {value:.2f} mm, the order says {ordered:.2f} mm"
    if difference > ORDER_TOLERANCE_MM + SLACK:
        return Finding("warning", "order_frame_mismatch", f"{text} ({difference:.2f} mm apart)")
    return Finding("info", "order_frame_match", f"{text}: matches")
