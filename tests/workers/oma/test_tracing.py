"""Tracing datasets: real files per eye, side B, given angles, and every broken case."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from ils.workers.oma.records import OmaDocument, OmaFormatError, Record, parse
from ils.workers.oma.tracing import Tracing, UnsupportedTracing, datasets, mirror, tracings

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"
#: A value planted in broken records: no error message may repeat it.
SECRET: Final = "7777"


def real(name: str) -> OmaDocument:
    return parse((DATA / name).read_bytes())


def text(*lines: str) -> OmaDocument:
    return parse("\r\n".join(lines).encode())


def radii_lines(radii: list[int], per_line: int = 10) -> list[str]:
    return [
        "R=" + ";".join(str(r) for r in radii[i : i + per_line])
        for i in range(0, len(radii), per_line)
    ]


def only_error(doc: OmaDocument) -> OmaFormatError:
    found = tracings(doc)
    assert len(found.errors) == 1, found.errors
    return found.errors[0]


@pytest.mark.parametrize(
    ("name", "count", "first_right", "first_left"),
    [
        ("R1000_1.oma", 1000, 24.16, 24.76),
        ("R1000_2.oma", 1000, 24.44, 25.01),
        ("R360_1.oma", 360, 26.43, 27.58),
        ("R360_2.oma", 360, 23.07, 24.07),
    ],
)
def test_real_files_decode_per_eye(
    name: str, count: int, first_right: float, first_left: float
) -> None:
    found = tracings(real(name))
    assert found.errors == ()
    assert isinstance(found.right, Tracing) and isinstance(found.left, Tracing)
    assert (found.right.eye, found.left.eye) == ("R", "L")
    assert found.right.count == found.left.count == count
    assert len(found.right.radii_mm) == len(found.left.radii_mm) == count
    assert found.right.radii_mm[0] == first_right
    assert found.left.radii_mm[0] == first_left
    assert found.right.angles_deg is None
    assert found.right.kind == ("P" if count == 1000 else "F")
    assert found.eye("R") is found.right and found.eye("L") is found.left
    found.raise_if_errors()


@pytest.mark.parametrize("name", ["R1000_1.oma", "R360_1.oma"])
def test_left_is_the_right_mirrored_in_real_files(name: str) -> None:
    """The DCS angle frame is the same for both eyes: a pair is a mirror image."""
    found = tracings(real(name))
    assert isinstance(found.right, Tracing) and isinstance(found.left, Tracing)
    assert mirror(found.right, "L").radii_mm == found.left.radii_mm


def test_trcfmt6_is_unsupported_per_eye_and_kept_raw() -> None:
    found = tracings(real("TRCFMT6.oma"))
    assert found.errors == ()
    for eye, tracing in (("R", found.right), ("L", found.left)):
        assert isinstance(tracing, UnsupportedTracing)
        assert tracing.eye == eye
        assert tracing.format == "6"
        assert tracing.count == 360
        assert tracing.reason == "format 6 (encoded), which this system does not read"
        assert tracing.dataset.header.fields[3] == eye
        (data,) = tracing.dataset.data
        assert data.label == "R" and data.fields[0].startswith("616751")


def test_datasets_end_at_the_next_label() -> None:
    doc = real("R360_1.oma")
    grouped, errors = datasets(doc)
    assert errors == []
    assert [len(d.data) for d in grouped] == [36, 36]
    assert grouped[1].data[-1].line < doc.first("UNI").line  # type: ignore[union-attr]


def test_side_b_gives_both_eyes_the_left_mirrored() -> None:
    pair = tracings(real("R360_1.oma"))
    right = pair.right
    assert isinstance(right, Tracing)
    radii = [round(r * 100) for r in right.radii_mm]
    found = tracings(text("TRCFMT=1;360;E;B;F", *radii_lines(radii)))
    assert found.errors == ()
    assert isinstance(found.right, Tracing) and isinstance(found.left, Tracing)
    assert found.right.radii_mm == right.radii_mm
    assert found.left.radii_mm == pair.left.radii_mm  # type: ignore[union-attr]
    assert found.left.side == "B" and found.left.eye == "L"


def test_side_b_with_an_odd_count_gets_given_angles() -> None:
    found = tracings(text("TRCFMT=1;5;E;B;F", "R=2000;2100;2200;2300;2400"))
    left = found.left
    assert isinstance(left, Tracing) and left.angles_deg is not None
    assert left.angles_deg == tuple(sorted(left.angles_deg))
    assert sorted(left.radii_mm) == sorted(found.right.radii_mm)  # type: ignore[union-attr]
    assert left.angles_deg[0] == 36.0  # 144 degrees mirrored


def test_given_angles_u() -> None:
    found = tracings(text("TRCFMT=1;4;U;R;F", "R=2000;2100;2200;2300", "A=0;9000;18000;27050"))
    assert found.errors == ()
    right = found.right
    assert isinstance(right, Tracing)
    assert right.angles_deg == (0.0, 90.0, 180.0, 270.5)
    assert right.angles() == right.angles_deg
    equal = tracings(text("TRCFMT=1;4;E;R;F", "R=2000;2100;2200;2300")).right
    assert isinstance(equal, Tracing)
    assert equal.angles() == (0.0, 90.0, 180.0, 270.0)


@pytest.mark.parametrize(
    ("lines", "message", "line"),
    [
        (
            ["REQ=FRM", "TRCFMT=1;12;E;R;F", "R=1;2;3;4;5;6;7;8;9;10"],
            "line 2: the right eye's tracing has 10 radii but its TRCFMT declares 12"
            " (the file may be truncated)",
            2,
        ),
        (
            ["TRCFMT=1;3;E;L;F", "R=1;2;3;4"],
            "line 1: the left eye's tracing has 4 radii but its TRCFMT declares 3",
            1,
        ),
        (
            ["TRCFMT=1;3;E;R;F", "R=1;2", f"R={SECRET}.5"],
            "line 3: the right eye's tracing: its radii include a value that is not a whole number",
            3,
        ),
        (["TRCFMT=1;3;E;R;F", f"R=1;-{SECRET};3"], "its radii include a negative value", 2),
        (["TRCFMT=1;3;E;R;F", "R=1;;3"], "its radii include an empty field", 2),
        (["TRCFMT=1;0;E;R;F"], "TRCFMT declares 0 points; a tracing has 1 to 10000", 1),
        (["TRCFMT=1;10001;E;R;F"], "declares 10001 points", 1),
        (["TRCFMT=1;x;E;R;F"], "point count is not a whole number", 1),
        (["TRCFMT=1;3;E;X;F", "R=1;2;3"], "TRCFMT names no eye (R, L or B)", 1),
        (["TRCFMT=1;3;Q;R;F", "R=1;2;3"], "neither E (equal angles) nor U", 1),
        (["TRCFMT=one;3;E;R;F", "R=1;2;3"], "the TRCFMT format is not a number", 1),
        (["TRCFMT=1;3;E"], "TRCFMT needs at least format;count;E|U;R|L|B", 1),
        (["TRCFMT=1;3;U;R;F", "R=1;2;3"], "declares its own angles (U) but has no angle (A=)", 1),
        (["TRCFMT=1;3;U;R;F", "R=1;2;3", "A=0;9000;9000"], "angles must rise from 0", 1),
        (["TRCFMT=1;3;U;R;F", "R=1;2;3", "A=0;9000;36000"], "angles must rise from 0", 1),
        (["TRCFMT=1;3;U;R;F", "R=1;2;3", "A=0;9000"], "has 2 angles but its TRCFMT declares 3", 1),
        (
            ["REQ=FRM", f"R={SECRET};2;3", "R=4", "TRCFMT=1;1;E;R;F", "R=1"],
            "line 2: a radius (R=) record before any dataset header (TRCFMT...)",
            2,
        ),
        (
            ["TRCFMT=1;1;E;R;F", "R=1", "HBOX=50", "DBL=15", "R=2"],
            "line 5: a radius (R=) record apart from its tracing: the HBOX record at line 3"
            " ends the tracing before it",
            5,
        ),
        (["A=1;2", "TRCFMT=1;1;E;R;F", "R=1"], "an angle (A=) record before any dataset header", 1),
        (
            ["TRCFMT=1;1;E;R;F", "R=1", "TRCFMT=1;1;E;R;F", "R=2"],
            "line 3: a second tracing for the right eye (the first is at line 1)",
            3,
        ),
        (
            ["TRCFMT=1;1;E;L;F", "R=1", "TRCFMT=6;1;E;B;F", "R=AB"],
            "line 3: a second tracing for the left eye (the first is at line 1)",
            3,
        ),
    ],
)
def test_broken_tracings(lines: list[str], message: str, line: int) -> None:
    error = only_error(text(*lines))
    assert message in str(error)
    assert error.line == line
    assert SECRET not in str(error)
    with pytest.raises(OmaFormatError):
        tracings(text(*lines)).raise_if_errors()


def test_a_broken_eye_does_not_hide_the_other() -> None:
    found = tracings(text("TRCFMT=1;3;E;R;F", "R=1;2", "TRCFMT=1;2;E;L;F", "R=2500;2600"))
    assert found.right is None
    assert isinstance(found.left, Tracing) and found.left.radii_mm == (25.0, 26.0)
    assert len(found.errors) == 1


def test_z_records_belong_to_the_dataset_and_strays_are_kept() -> None:
    doc = text("ZFMT=1;2;E;R;F", "TRCFMT=1;2;E;R;F", "R=1;2", "ZFMT=1;2;E;R;F", "Z=5;6", "DBL=1")
    grouped, errors = datasets(doc)
    assert errors == []
    # ZFMT is a dataset header of its own (DCS 3.x): each owns the records after it.
    assert [(d.kind, [r.label for r in d.data]) for d in grouped] == [
        ("ZFMT", []),
        ("TRCFMT", ["R"]),
        ("ZFMT", ["Z"]),
    ]
    assert tracings(doc).errors == ()


def test_no_tracing() -> None:
    found = tracings(OmaDocument((Record("REQ", ("FRM",)),)))
    assert (found.right, found.left, found.errors) == (None, None, ())
