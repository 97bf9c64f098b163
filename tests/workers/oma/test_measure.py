"""Measurements of real and synthetic tracings, and the outline for the work ticket."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

import pytest

from ils.workers.oma.measure import measure, measure_set, outline, points, ticket_outline
from ils.workers.oma.records import OmaDocument, parse
from ils.workers.oma.tracing import Tracing, TracingSet, tracings
from ils.workers.pdf.shape import clean_outline

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"
TRACED: Final = ("R1000_1.oma", "R1000_2.oma", "R360_1.oma", "R360_2.oma")


def real(name: str) -> tuple[OmaDocument, TracingSet]:
    doc = parse((DATA / name).read_bytes())
    return doc, tracings(doc)


def circle(radius_mm: float, count: int = 360, eye: str = "R") -> Tracing:
    return Tracing(eye, count, (radius_mm,) * count, "F")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "a", "b", "circ"),
    [
        ("R1000_1.oma", 51.0, 40.08, 150.85),
        ("R1000_2.oma", 51.4, 38.96, 148.74),
        ("R360_1.oma", 55.0, 38.01, None),
        ("R360_2.oma", 48.0, 38.01, None),
    ],
)
def test_real_files_measure_as_declared(name: str, a: float, b: float, circ: float | None) -> None:
    doc, found = real(name)
    measured = measure_set(found)
    assert set(measured) == {"R", "L"}
    for eye in ("R", "L"):
        m = measured[eye]
        assert abs(m.a_mm - a) < 0.005
        assert abs(m.b_mm - b) < 0.005
        declared = doc.eye_number("CIRC", eye)
        assert declared == circ
        if declared is not None:
            assert abs(m.circumference_mm - declared) <= 0.1
            # The smoothing removes the rounding zig-zag: the match is much closer.
            assert abs(m.circumference_mm - declared) <= 0.005
        eyesize = doc.eye_number("EYESIZ", eye)
        if eyesize is not None:
            assert abs(m.a_mm - eyesize) <= 0.5
        assert m.a_mm / 2 <= m.ed_mm / 2 <= math.hypot(m.a_mm, m.b_mm) / 2 + 1e-9


def test_right_and_left_measure_alike_with_mirrored_centres() -> None:
    _, found = real("R360_1.oma")
    measured = measure_set(found)
    right, left = measured["R"], measured["L"]
    assert right.a_mm == pytest.approx(left.a_mm)
    assert right.circumference_mm == pytest.approx(left.circumference_mm)
    assert right.center_x_mm == pytest.approx(-left.center_x_mm)
    assert right.center_y_mm == pytest.approx(left.center_y_mm)
    assert right.as_dict() == {
        "a_mm": 55.0,
        "b_mm": 38.01,
        "ed_mm": 58.09,
        "circumference_mm": 156.36,
        "center_x_mm": -0.09,
        "center_y_mm": 0.05,
    }


def test_unsupported_tracings_are_not_measured() -> None:
    _, found = real("TRCFMT6.oma")
    assert measure_set(found) == {}
    assert ticket_outline(found) is None


@pytest.mark.parametrize("count", [120, 360, 1000])
def test_a_circle(count: int) -> None:
    m = measure(circle(25.0, count))
    assert m.a_mm == pytest.approx(50.0, abs=0.02)
    assert m.b_mm == pytest.approx(50.0, abs=0.02)
    assert m.ed_mm == pytest.approx(50.0, abs=0.02)
    # A polygon is a little shorter than its circle: 0.02 mm at 120 points.
    assert m.circumference_mm == pytest.approx(2 * math.pi * 25, abs=0.02)
    assert abs(m.center_x_mm) < 0.01 and abs(m.center_y_mm) < 0.01


def test_an_off_centre_shape() -> None:
    """A circle of 20 mm whose centre is 3 mm nasal of the tracing's origin."""
    count = 720
    radii = []
    for i in range(count):
        t = 2 * math.pi * i / count
        # Distance along direction t to a circle of radius 20 centred at (3, 0).
        radii.append(3 * math.cos(t) + math.sqrt(400 - (3 * math.sin(t)) ** 2))
    m = measure(Tracing("R", count, tuple(radii), "F"))
    assert m.center_x_mm == pytest.approx(3.0, abs=0.001)
    assert m.center_y_mm == pytest.approx(0.0, abs=0.001)
    assert m.a_mm == pytest.approx(40.0, abs=0.001)
    assert m.ed_mm == pytest.approx(40.0, abs=0.001)


def test_given_angles_measure_like_equal_ones() -> None:
    _, found = real("R360_2.oma")
    right = found.right
    assert isinstance(right, Tracing)
    given = Tracing("R", 360, right.radii_mm, "F", tuple(float(a) for a in range(360)))
    assert measure(given).as_dict() == pytest.approx(measure(right).as_dict(), abs=1e-9)
    for (x1, y1), (x2, y2) in zip(points(given), points(right), strict=True):
        assert (x1, y1) == pytest.approx((x2, y2), abs=1e-9)


@pytest.mark.parametrize("name", TRACED)
def test_outline_of_real_files(name: str) -> None:
    _, found = real(name)
    shape = ticket_outline(found)
    assert shape is not None and len(shape) == 90
    assert clean_outline(shape) is not None
    measured = measure_set(found)["R"]
    xs = [x for x, _ in shape]
    ys = [y for _, y in shape]
    assert max(xs) - min(xs) == pytest.approx(measured.a_mm, abs=0.1)
    assert max(ys) - min(ys) == pytest.approx(measured.b_mm, abs=0.1)
    # Around the boxing centre.
    assert (max(xs) + min(xs)) / 2 == pytest.approx(0, abs=0.1)
    assert (max(ys) + min(ys)) / 2 == pytest.approx(0, abs=0.1)
    assert all(round(v, 2) == v for point in shape for v in point)


def test_outline_starts_nasal_and_runs_counter_clockwise() -> None:
    _, found = real("R1000_1.oma")
    right = found.right
    assert isinstance(right, Tracing)
    shape = outline(right, points=4)
    # 0 degrees is the right lens's nasal side (+x), then up (+y), temporal, down.
    assert shape[0][0] == pytest.approx(24.16, abs=0.01) and shape[0][1] == 0
    assert shape[1][1] > 0 and shape[2][0] < 0 and shape[3][1] < 0


def test_a_left_only_file_gives_the_right_lens_mirrored() -> None:
    _, found = real("R360_1.oma")
    left_only = TracingSet(None, found.left)
    assert ticket_outline(left_only) == ticket_outline(found)
    assert isinstance(found.left, Tracing)
    assert outline(found.left, 36) == outline(found.right, 36)  # type: ignore[arg-type]


def test_outline_needs_points() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        outline(circle(20.0), points=2)
    assert clean_outline(outline(circle(20.0), points=8)) is not None
