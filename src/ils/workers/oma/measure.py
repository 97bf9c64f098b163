"""What a decoded tracing measures, and its outline for the lab work ticket.

Each radius ``r`` at angle ``t`` is the point ``(r cos t, r sin t)`` in mm, in the
DCS frame (seen from the front, x to the viewer's right, y up; see ``tracing``).

* Boxing (ISO 8624): A is the width of the smallest horizontal box around the shape,
  B its height, the boxing centre the middle of that box.
* ED (effective diameter): twice the largest distance from the boxing centre to the
  shape, the smallest round blank centred there that holds the lens.
* Circumference: the perimeter of the closed polygon through the points after a light
  ``[1, 2, 1] / 4`` smoothing of the radii. Why smoothing: radii are rounded to 1/100
  mm, and at 1000 points (0.16 mm apart) that rounding zig-zags the polygon, adding
  about 0.05 mm; it grows with the square of the point count (on a 50 mm circle: 0.26
  mm at 2000 points, 0.02 after smoothing). The real files' declared ``CIRC`` (150.85,
  148.74) match the smoothed perimeter to 0.001 mm; the raw polygon gives 150.89 and
  148.79.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ils.workers.oma.records import Eye
from ils.workers.oma.tracing import Tracing, TracingSet

FloatArray = npt.NDArray[np.float64]
OUTLINE_POINTS: Final = 90
OUTLINE_DECIMALS: Final = 2


@dataclass(frozen=True, slots=True)
class Measurements:
    """One lens's sizes in mm; the boxing centre is relative to the tracing's centre."""

    a_mm: float
    b_mm: float
    ed_mm: float
    circumference_mm: float
    center_x_mm: float
    center_y_mm: float

    def as_dict(self) -> dict[str, float]:
        """For JSON: each size rounded to 0.01 mm."""
        return {
            "a_mm": _rounded(self.a_mm),
            "b_mm": _rounded(self.b_mm),
            "ed_mm": _rounded(self.ed_mm),
            "circumference_mm": _rounded(self.circumference_mm),
            "center_x_mm": _rounded(self.center_x_mm),
            "center_y_mm": _rounded(self.center_y_mm),
        }


def points(tracing: Tracing) -> list[tuple[float, float]]:
    """The traced points in mm, in tracing order."""
    xs, ys = _xy(tracing, np.asarray(tracing.radii_mm, dtype=np.float64))
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def measure(tracing: Tracing) -> Measurements:
    """Boxing A and B, ED, circumference and boxing centre of one tracing."""
    radii = np.asarray(tracing.radii_mm, dtype=np.float64)
    xs, ys = _xy(tracing, radii)
    center_x = (float(xs.max()) + float(xs.min())) / 2
    center_y = (float(ys.max()) + float(ys.min())) / 2
    farthest = float(np.hypot(xs - center_x, ys - center_y).max())
    around = np.concatenate((radii[-1:], radii, radii[:1]))  # the shape is closed
    smoothed = (around[:-2] + 2 * radii + around[2:]) / 4
    sx, sy = _xy(tracing, np.append(smoothed, smoothed[0]))
    perimeter = float(np.hypot(np.diff(sx), np.diff(sy)).sum())
    return Measurements(
        a_mm=float(xs.max() - xs.min()),
        b_mm=float(ys.max() - ys.min()),
        ed_mm=2 * farthest,
        circumference_mm=perimeter,
        center_x_mm=center_x,
        center_y_mm=center_y,
    )


def measure_set(tracing_set: TracingSet) -> dict[Eye, Measurements]:
    """Measurements of each eye whose tracing was decoded."""
    found: dict[Eye, Measurements] = {}
    for eye in ("R", "L"):
        tracing = tracing_set.eye(eye)
        if isinstance(tracing, Tracing):
            found[eye] = measure(tracing)
    return found


def outline(
    tracing: Tracing, points: int = OUTLINE_POINTS, *, measured: Measurements | None = None
) -> list[list[float]]:
    """The right lens's shape as ``[x, y]`` mm around its boxing centre, for the ticket.

    x points to the nose, y up, seen from the front (what ``pdf.shape.clean_outline``
    takes); ``points`` equal angular steps counter-clockwise from the nasal side, the
    radius interpolated between traced points, rounded to 0.01 mm. A left lens is
    mirrored into the right lens it pairs with: in the DCS frame the right lens's nose
    side is at 0 degrees and the left lens's at 180. ``measured``: the tracing's
    measurements, when the caller has them already.
    """
    if points < 3:
        raise ValueError("an outline needs at least 3 points")
    box = measured if measured is not None else measure(tracing)
    left = tracing.eye == "L"
    center_x = -box.center_x_mm if left else box.center_x_mm
    shape: list[list[float]] = []
    for k in range(points):
        degrees = 360.0 * k / points
        source = (180.0 - degrees) % 360.0 if left else degrees
        radius = _radius_at(tracing, source)
        x = radius * math.cos(math.radians(degrees)) - center_x
        y = radius * math.sin(math.radians(degrees)) - box.center_y_mm
        shape.append([_rounded(x), _rounded(y)])
    return shape


def ticket_outline(
    tracing_set: TracingSet, points: int = OUTLINE_POINTS
) -> list[list[float]] | None:
    """The outline for the ticket: the right tracing, else the left one mirrored."""
    for eye in ("R", "L"):
        tracing = tracing_set.eye(eye)
        if isinstance(tracing, Tracing):
            return outline(tracing, points)
    return None


def _xy(tracing: Tracing, radii: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Points for these radii at the tracing's angles (equal steps unless given).

    ``radii`` may repeat the first radius at the end, to close the polygon.
    """
    n = tracing.count
    if tracing.angles_deg is None:
        angles = np.arange(len(radii), dtype=np.float64) * (2 * math.pi / n)
    else:
        given = np.radians(np.asarray(tracing.angles_deg, dtype=np.float64))
        angles = np.append(given, given[0])[: len(radii)]
    return radii * np.cos(angles), radii * np.sin(angles)


def _radius_at(tracing: Tracing, degrees: float) -> float:
    """The radius at an angle, linear between the traced points around it."""
    radii, n = tracing.radii_mm, tracing.count
    if tracing.angles_deg is None:
        position = degrees * n / 360.0
        before = min(int(position), n - 1)
        share = position - before
        return radii[before] + (radii[(before + 1) % n] - radii[before]) * share
    angles = tracing.angles_deg
    after = bisect_right(angles, degrees)
    before = after - 1
    angle_before = angles[before] if before >= 0 else angles[-1] - 360.0
    angle_after = angles[after] if after < n else angles[0] + 360.0
    radius_before, radius_after = radii[before], radii[after % n]
    span = angle_after - angle_before
    if span <= 0:
        return radius_before
    share = (degrees - angle_before) / span
    return radius_before + (radius_after - radius_before) * share


def _rounded(value: float) -> float:
    """Rounded to 0.01 mm, without a negative zero."""
    return round(value, OUTLINE_DECIMALS) + 0.0
