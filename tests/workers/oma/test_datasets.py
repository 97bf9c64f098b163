"""Files built here with DCS 3.x companions: thickness datasets and drill holes.

The shape is an ellipse of semi-axes 26 x 20 mm traced from its centre, so A, B, ED
and circumference are known without the code under test: A = 52, B = 40, ED = 52
(the farthest point from the boxing centre is the end of the long axis) and the
circumference is Ramanujan's approximation of the ellipse's perimeter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

import numpy as np
import pytest

from ils.workers.oma.checks import Finding, check, status
from ils.workers.oma.companions import check_companions, companion_datasets, drill_holes
from ils.workers.oma.measure import measure_set
from ils.workers.oma.records import parse
from ils.workers.oma.tracing import Tracing, tracings

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"
SEMI_A: Final = 26.0
SEMI_B: Final = 20.0
POINTS: Final = 360


def ellipse_radii(count: int = POINTS) -> list[int]:
    """The ellipse's radii from its centre, in 1/100 mm, at equal angles."""
    theta = np.arange(count) * 2 * np.pi / count
    r = SEMI_A * SEMI_B / np.sqrt((SEMI_B * np.cos(theta)) ** 2 + (SEMI_A * np.sin(theta)) ** 2)
    return [round(float(v) * 100) for v in r]


def r_records(values: list[int], label: str = "R") -> list[str]:
    return [
        f"{label}=" + ";".join(str(v) for v in values[i : i + 10])
        for i in range(0, len(values), 10)
    ]


def dcs(*extra: str, thickness: list[int] | None = None, declared: tuple[str, ...] = ()) -> bytes:
    """A DCS 3.10 file: the ellipse for both eyes, a thickness set, ``extra`` records."""
    lines = ["REQ=FRM", "JOB=T1", "DO=B", *declared, f"TRCFMT=1;{POINTS};E;B;F"]
    lines += r_records(ellipse_radii())
    if thickness is not None:
        lines += [f"STHKFMT=1;{len(thickness)};E;R", *r_records(thickness)]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def findings_of(data: bytes) -> list[Finding]:
    doc = parse(data)
    traced = tracings(doc)
    measured = measure_set(traced)
    return check(doc, traced, measured) + check_companions(doc, traced, measured)


def test_a_thickness_dataset_with_its_own_radii_is_read_not_refused() -> None:
    # The reported bug: STHKFMT's own R= records were "a radius (R=) record before any
    # TRCFMT record". Here the thickness set comes after the tracing and also first.
    thickness = [180 + (i % 10) for i in range(72)]
    for data in (
        dcs(thickness=thickness),
        b"STHKFMT=1;72;E;R\r\n" + "\r\n".join(r_records(thickness)).encode() + b"\r\n" + dcs(),
    ):
        doc = parse(data)
        traced = tracings(doc)
        assert traced.errors == ()
        assert isinstance(traced.right, Tracing) and traced.right.count == POINTS
        companions, problems = companion_datasets(doc)
        assert problems == []
        (sthk,) = companions
        assert (sthk.kind, sthk.eye) == ("STHKFMT", "R")
        assert sthk.values_mm == tuple(v / 100 for v in thickness)
        found = findings_of(data)
        assert status(found) == "ok", found
        assert any(f.code == "thickness" and "1.80 to 1.89 mm" in f.message for f in found)


def test_the_shape_is_measured_from_the_tracing_whatever_else_the_file_carries() -> None:
    a, b = SEMI_A, SEMI_B
    circumference = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
    data = dcs(
        "ZFMT=1;360;E;B",
        *r_records([150] * 360, "Z"),
        "DRILLE=R;C;18.00;2.00;1.40",
        "_VENDOR=x;y",
        thickness=[200] * 72,
    )
    measured = measure_set(tracings(parse(data)))
    for eye in ("R", "L"):
        m = measured[eye]  # type: ignore[index]
        assert abs(m.a_mm - 2 * a) <= 0.1
        assert abs(m.b_mm - 2 * b) <= 0.1
        assert abs(m.ed_mm - 2 * a) <= 0.1
        assert abs(m.circumference_mm - circumference) <= 0.1


def test_a_thickness_no_lens_has_is_an_error() -> None:
    found = findings_of(dcs(thickness=[3000] * 72))
    (bad,) = [f for f in found if f.code == "thickness_implausible"]
    assert bad.severity == "error" and "30.00" in bad.message


@pytest.mark.parametrize(
    ("record", "code", "severity"),
    [
        ("DRILLE=R;C;18.00;2.00;1.40", "drill_hole", "info"),
        ("DRILLE=R;C;18.00;2.00;1.40;20.00;2.00;0", "drill_hole", "info"),
        # 26 mm is the lens's edge on the long axis: a hole there breaks it.
        ("DRILLE=R;C;25.80;0.00;1.40", "drill_outside", "error"),
        ("DRILLE=R;C;40.00;0.00;1.40", "drill_outside", "error"),
        ("DRILLE=R;C;18.00;2.00;1.40;27.00;2.00;0", "drill_outside", "error"),
        ("DRILLE=R;C;18.00;2.00;9.00", "drill_size_implausible", "error"),
        ("DRILLE=R;C;18.00;2.00;0.20", "drill_size_implausible", "error"),
        ("DRILLE=R;C;x;2.00;1.40", "drill_invalid", "error"),
    ],
)
def test_drill_holes_are_read_and_checked(record: str, code: str, severity: str) -> None:
    found = [f for f in findings_of(dcs(record)) if f.code.startswith("drill")]
    assert [(f.code, f.severity) for f in found] == [(code, severity)]


def test_a_hole_for_both_eyes_is_mirrored_and_its_position_shown() -> None:
    data = dcs("DRILLE=B;C;-18.50;3.00;1.60")
    holes, problems = drill_holes(parse(data))
    assert problems == []
    assert [(h.eye, h.x_mm, h.y_mm, h.diameter_mm) for h in holes] == [
        ("R", -18.5, 3.0, 1.6),
        ("L", 18.5, 3.0, 1.6),
    ]
    shown = [f.message for f in findings_of(data) if f.code == "drill_hole"]
    assert shown == [
        "right eye: hole at x -18.50, y +3.00 mm (C), diameter 1.60 mm",
        "left eye: hole at x +18.50, y +3.00 mm (C), diameter 1.60 mm",
    ]


def test_a_whole_number_fed_is_compared_at_its_precision() -> None:
    # ED of this ellipse is 52.00; a file declaring FED=52 and HBOX=52.0 matches, and
    # one declaring 52.33 against 52.00 at two decimals does not.
    found = findings_of(dcs(declared=("FED=52", "HBOX=52.0")))
    assert not [f for f in found if f.code == "declared_mismatch"], found
    found = findings_of(dcs(declared=("FED=52.33",)))
    assert [f.code for f in found if f.code == "declared_mismatch"] == ["declared_mismatch"] * 2


def test_rounding_only_forgives_what_the_precision_hides() -> None:
    # FED=53 against 52.00 measured: 1 mm apart even at whole millimetres.
    found = findings_of(dcs(declared=("FED=53",)))
    assert [f.code for f in found if f.code == "declared_mismatch"] == ["declared_mismatch"] * 2


def test_an_empty_field_is_reported_as_such_not_as_one_radius_too_many() -> None:
    lines = dcs().decode().split("\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("R="))
    lines[index] = lines[index].replace(";", ";;", 1)
    (error,) = tracings(parse("\r\n".join(lines).encode())).errors
    assert "an empty field" in str(error) and "361" not in str(error)
    assert error.line == index + 1


@pytest.mark.parametrize("fmt", ["2", "3", "4", "6"])
def test_formats_that_give_no_shape_are_errors(fmt: str) -> None:
    data = f"REQ=FRM\r\nTRCFMT={fmt};360;E;B;F\r\nR=AAAA\r\n".encode()
    found = findings_of(data)
    assert [f.severity for f in found if f.code == "tracing_unsupported"] == ["error", "error"]
    assert status(found) == "errors"


@pytest.mark.parametrize("name", ["R1000_1.oma", "R1000_2.oma", "R360_1.oma", "R360_2.oma"])
def test_every_real_file_measures_as_its_radii_do(name: str) -> None:
    """A, B, ED and circumference from the file's own R= values, computed here."""
    data = (DATA / name).read_bytes()
    lines = data.decode("latin-1").replace("\r", "").split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("TRCFMT="))
    count = int(lines[header].split(";")[1])
    values: list[int] = []
    for line in lines[header + 1 :]:
        if not line.startswith("R="):
            break
        values += [int(v) for v in line[2:].split(";")]
    assert len(values) == count
    r = np.asarray(values, dtype=float) / 100
    theta = np.arange(count) * 2 * np.pi / count
    x, y = r * np.cos(theta), r * np.sin(theta)
    cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
    perimeter = float(np.hypot(np.diff(np.append(x, x[0])), np.diff(np.append(y, y[0]))).sum())
    m = measure_set(tracings(parse(data)))["R"]
    assert abs(m.a_mm - (x.max() - x.min())) <= 0.1
    assert abs(m.b_mm - (y.max() - y.min())) <= 0.1
    assert abs(m.ed_mm - 2 * np.hypot(x - cx, y - cy).max()) <= 0.1
    assert abs(m.circumference_mm - perimeter) <= 0.1
