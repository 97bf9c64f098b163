"""Findings: one planted problem per check, in real files where there is one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

from ils.workers.oma.checks import (
    Finding,
    OrderFrame,
    OrderRx,
    check,
    spike_threshold_mm,
    status,
)
from ils.workers.oma.measure import measure_set
from ils.workers.oma.records import Eye, OmaDocument, Record, parse
from ils.workers.oma.tracing import DATA_LABELS, Tracing, TracingSet, tracings

DATA: Final = Path(__file__).resolve().parents[2] / "data" / "oma"


def real(name: str) -> OmaDocument:
    return parse((DATA / name).read_bytes())


def run(
    doc: OmaDocument, frame: OrderFrame | None = None, rx: dict[Eye, OrderRx] | None = None
) -> list[Finding]:
    found = tracings(doc)
    return check(doc, found, measure_set(found), frame, rx)


def codes(findings: list[Finding], severity: str | None = None) -> list[str]:
    return [f.code for f in findings if severity is None or f.severity == severity]


def with_records(doc: OmaDocument, *lines: str, drop: tuple[str, ...] = ()) -> OmaDocument:
    """``doc`` without the ``drop`` labels, with ``lines`` (``LABEL=...``) at its start."""
    extra = parse("\r\n".join(lines).encode()).records if lines else ()
    kept = tuple(r for r in doc.records if r.label not in drop)
    return OmaDocument(extra + kept)


def with_radii(doc: OmaDocument, eye: Eye, change: Callable[[list[int]], list[int]]) -> OmaDocument:
    """``doc`` with the radii (1/100 mm) of one eye's tracing passed through ``change``."""
    tracing = tracings(doc).eye(eye)
    assert isinstance(tracing, Tracing)
    radii = change([round(r * 100) for r in tracing.radii_mm])
    out: list[Record] = []
    side: str | None = None
    for record in doc.records:
        if record.label == "TRCFMT":
            side = record.fields[3]
            out.append(record)
            if side == eye:
                out += [
                    Record("R", tuple(str(v) for v in radii[i : i + 10]))
                    for i in range(0, len(radii), 10)
                ]
            continue
        if record.label == "R" and side == eye:
            continue
        if record.label not in DATA_LABELS:
            side = None
        out.append(record)
    return OmaDocument(tuple(out))


def without_eye(doc: OmaDocument, eye: Eye) -> OmaDocument:
    out: list[Record] = []
    skipping = False
    for record in doc.records:
        if record.label == "TRCFMT":
            skipping = record.fields[3] == eye
        elif record.label not in DATA_LABELS:
            skipping = False
        if not skipping:
            out.append(record)
    return OmaDocument(tuple(out))


def test_a_good_file_matching_its_order_is_ok() -> None:
    frame = OrderFrame(box_a=51, box_b=40, dbl=15)
    findings = run(real("R1000_1.oma"), frame)
    assert status(findings) == "ok", findings
    assert set(codes(findings)) == {"declared_match", "eyesize", "order_frame_match"}
    messages = [f.message for f in findings]
    assert (
        "right eye: circumference measured 150.85 mm, the file declares CIRC 150.85: matches"
        in messages
    )
    assert "bridge DBL in the file 15.00 mm, the order says 15.00 mm: matches" in messages
    assert any("close to the frame's marked eye size 51 (EYESIZ)" in m for m in messages)


@pytest.mark.parametrize("name", ["R1000_2.oma", "R360_1.oma", "R360_2.oma"])
def test_real_files_have_no_problems(name: str) -> None:
    assert status(run(real(name))) == "ok"


def test_spike_in_a_1000_point_tracing() -> None:
    doc = with_radii(real("R1000_1.oma"), "R", lambda r: [*r[:250], r[250] + 60, *r[251:]])
    findings = run(doc)
    (spike,) = [f for f in findings if f.code == "shape_spike"]
    assert spike.severity == "error"
    assert spike.message.startswith("right eye: the radius at 90.0° is 0.60 mm off")
    assert status(findings) == "errors"


@pytest.mark.parametrize(("bump", "spikes"), [(40, 0), (60, 1)])
def test_spike_threshold_at_360_points(bump: int, spikes: int) -> None:
    doc = with_radii(real("R360_1.oma"), "L", lambda r: [*r[:100], r[100] - bump, *r[101:]])
    findings = run(doc)
    assert codes(findings).count("shape_spike") == spikes
    if spikes:
        assert "left eye: the radius at 100.0°" in findings[0].message


def test_spike_threshold_scales_with_the_step() -> None:
    assert spike_threshold_mm(360) == 0.5
    assert spike_threshold_mm(1000) == 0.25
    assert spike_threshold_mm(180) == 2.0


def test_a_spike_across_radius_0_is_one_spike() -> None:
    doc = with_radii(real("R1000_2.oma"), "L", lambda r: [r[0] + 80, *r[1:-1], r[-1] + 80])
    spikes = [f.message for f in run(doc) if f.code == "shape_spike"]
    assert len(spikes) == 1
    assert spikes[0].startswith("left eye: the radius at ")


def test_many_spikes_are_summed_up() -> None:
    def spiky(radii: list[int]) -> list[int]:
        return [r + (200 if i % 50 == 25 else 0) for i, r in enumerate(radii)]

    findings = run(with_radii(real("R360_2.oma"), "R", spiky))
    spikes = [f.message for f in findings if f.code == "shape_spike"]
    assert len(spikes) == 4
    assert spikes[-1] == "right eye: 4 more spikes like these"  # 7 in all


def test_open_shape() -> None:
    def drift(radii: list[int]) -> list[int]:
        return [r + 150 * i // len(radii) for i, r in enumerate(radii)]

    findings = run(with_radii(real("R360_1.oma"), "R", drift))
    (gap,) = [f for f in findings if f.code == "shape_open"]
    assert gap.severity == "warning"
    assert gap.message.startswith("right eye: the last radius is 1.38 mm from the first")
    assert "shape_spike" not in codes(findings)
    assert status(findings) == "warnings"


def test_implausible_sizes() -> None:
    doc = parse(("TRCFMT=1;360;E;R;F\r\n" + "R=5000\r\n" * 360).encode())
    findings = run(doc)
    messages = [f.message for f in findings if f.code == "size_implausible"]
    assert len(messages) == 4
    assert "right eye: the boxed width A is 100.00 mm, outside the plausible 20-80 mm" in messages
    assert any("ED" in m and "0-85 mm" in m for m in messages)
    assert any("radii run from 50.00 to 50.00 mm" in m for m in messages)


def test_declared_values_off_by_1_mm() -> None:
    doc = with_records(
        real("R1000_1.oma"), "CIRC=151.85", "HBOX=51.00;52.00", "VBOX=40.1", drop=("CIRC",)
    )
    findings = run(doc)
    warnings = [f.message for f in findings if f.severity == "warning"]
    assert sorted(warnings) == [
        "left eye: boxed width A measured 51.00 mm, the file declares HBOX 52.00 mm"
        " (1.00 mm apart)",
        "left eye: circumference measured 150.85 mm, the file declares CIRC 151.85 mm"
        " (1.00 mm apart)",
        "right eye: circumference measured 150.85 mm, the file declares CIRC 151.85 mm"
        " (1.00 mm apart)",
    ]
    assert codes(findings, "warning") == ["declared_mismatch"] * 3
    matches = [f.message for f in findings if f.code == "declared_match"]
    assert "right eye: boxed width A measured 51.00 mm, the file declares HBOX 51.00: matches" in (
        matches
    )
    assert sum("VBOX" in m for m in matches) == 2


def test_trcfmt6_declares_but_cannot_be_measured() -> None:
    findings = run(real("TRCFMT6.oma"), OrderFrame(box_a=54, dbl=17))
    # No shape can be read from format 6: an error, not a mere warning.
    assert codes(findings, "error") == ["tracing_unsupported", "tracing_unsupported"]
    assert findings[1].message == (
        "the left eye's tracing is in format 6 (encoded), which this system does not read:"
        " no shape read"
    )
    assert "tracing_missing" not in codes(findings)
    assert "declared_match" not in codes(findings)  # nothing measured to compare
    assert codes(findings, "info") == ["order_frame_match"]  # DBL, from the records
    assert status(findings) == "errors"


def test_unreadable_declared_value() -> None:
    findings = run(with_records(real("R360_2.oma"), "HBOX=4,8", "FED=?"))
    unreadable = [f for f in findings if f.code == "value_unreadable"]
    assert [f.message for f in unreadable] == [
        "line 1: HBOX is not a number for the right eye",
        "line 1: HBOX is not a number for the left eye",
    ]
    assert all("4,8" not in f.message for f in findings)


def test_order_frame_off() -> None:
    findings = run(real("R1000_1.oma"), OrderFrame(box_a=52, box_b=40.5, ed=57.2, dbl=16))
    warnings = [f.message for f in findings if f.code == "order_frame_mismatch"]
    assert warnings == [
        "right eye: boxed width A 51.00 mm, the order says 52.00 mm (1.00 mm apart)",
        "left eye: boxed width A 51.00 mm, the order says 52.00 mm (1.00 mm apart)",
        "bridge DBL in the file 15.00 mm, the order says 16.00 mm (1.00 mm apart)",
    ]
    assert codes(findings).count("order_frame_match") == 4  # B and ED, each eye


def test_do_b_with_one_eye_missing() -> None:
    doc = with_records(without_eye(real("R360_1.oma"), "L"), "DO=B")
    findings = run(doc)
    (missing,) = [f for f in findings if f.code == "tracing_missing"]
    assert missing.severity == "error"
    assert missing.message == (
        "the file asks for both eyes (DO) but has no tracing for the left eye"
    )


@pytest.mark.parametrize(("do", "missing"), [("R", 0), ("L", 1), ("B", 1), ("", 0)])
def test_do_names_the_eyes_needed(do: str, missing: int) -> None:
    doc = without_eye(real("R360_1.oma"), "L")
    if do:
        doc = with_records(doc, f"DO={do}")
    assert codes(run(doc)).count("tracing_missing") == missing


def test_no_tracing_at_all() -> None:
    findings = run(parse(b"JOB=1\r\nSPH=1;1\r\n"))
    assert codes(findings) == ["tracing_none"]
    findings = run(parse(b"JOB=1\r\nDO=B\r\n"))
    assert codes(findings) == ["tracing_missing", "tracing_missing"]


def test_broken_tracings_are_error_findings() -> None:
    data = (DATA / "R1000_2.oma").read_bytes()
    truncated = parse(data[: len(data) - 300])
    findings = run(truncated)
    invalid = [f for f in findings if f.code == "tracing_invalid"]
    assert len(invalid) == 1
    assert invalid[0].message.startswith("line 113: the left eye's tracing has 9")
    assert "(the file may be truncated)" in invalid[0].message
    assert status(findings) == "errors"


RX_FILE: Final = ("SPH=+1.00;-2.00", "CYL=-0.50;+1.00", "AX=90;180")


def rx_findings(right: OrderRx, left: OrderRx | None = None) -> list[Finding]:
    doc = with_records(real("R360_2.oma"), *RX_FILE)
    rx: dict[Eye, OrderRx] = {"R": right}
    if left is not None:
        rx["L"] = left
    return [f for f in run(doc, rx=rx) if f.code.startswith("rx_")]


def test_prescription_matches_even_transposed() -> None:
    found = rx_findings(OrderRx(1.0, -0.5, 90), OrderRx(-1.0, -1.0, 90))
    assert [f.code for f in found] == ["rx_match", "rx_match"]
    assert found[1].message == (
        "left eye: the prescription matches the order (the file's -1.00 / -1.00 x 90°,"
        " the order's -1.00 / -1.00 x 90°, in minus-cylinder form)"
    )


def test_prescription_in_plus_cylinder_on_the_order() -> None:
    # The order writes the right eye as +0.50 / +0.50 x 180: the same lens.
    assert [f.code for f in rx_findings(OrderRx(0.5, 0.5, 180))] == ["rx_match"]
    (turned,) = rx_findings(OrderRx(0.5, 0.5, 90))
    assert turned.code == "rx_axis_mismatch"
    assert turned.message.endswith("the order's +1.00 / -0.50 x 180°)")


@pytest.mark.parametrize(
    ("order", "differ"),
    [
        (OrderRx(1.25, -0.5, 90), ["sphere"]),
        (OrderRx(1.0, -0.75, 90), ["cylinder"]),
        # BS EN ISO 21987 allows 9 degrees on a 0.50 D cylinder: 10 is beyond.
        (OrderRx(1.0, -0.5, 100), ["axis"]),
        (OrderRx(1.5, -0.75, 90), ["sphere", "cylinder"]),
        (OrderRx(1.0, None, None), ["cylinder"]),
    ],
)
def test_prescription_mismatch(order: OrderRx, differ: list[str]) -> None:
    found = rx_findings(order)
    assert [f.code for f in found] == [f"rx_{part}_mismatch" for part in differ]
    for finding, part in zip(found, differ, strict=True):
        assert finding.severity == "error"
        plural = "axes" if part == "axis" else f"{part}s"
        assert finding.message.startswith(
            f"right eye: the {plural} differ (the file's +1.00 / -0.50 x 90°, the order's"
        )
    assert found[-1].message.endswith(
        "+1.00 DS)" if order.cylinder is None else f"x {order.axis:g}°)"
    )


@pytest.mark.parametrize(
    "order",
    [
        # Within BS EN ISO 21987: 0.12 D sphere, 0.09 D cylinder, 9 degrees at 0.50 D.
        OrderRx(1.12, -0.41, 99),
        OrderRx(1.0, -0.5, 88),
        OrderRx(None, -0.5, 90),  # no sphere on the order: not compared
    ],
)
def test_prescription_tolerances(order: OrderRx) -> None:
    assert [f.code for f in rx_findings(order)] == ["rx_match"]


def test_axis_wraps_and_is_ignored_without_cylinder() -> None:
    doc = with_records(real("R360_2.oma"), "SPH=-1.00;-1.00", "CYL=-0.50;0.00", "AX=1;45")
    rx: dict[Eye, OrderRx] = {"R": OrderRx(-1.0, -0.5, 180), "L": OrderRx(-1.0, 0.0, 120)}
    found = [f for f in run(doc, rx=rx) if f.code.startswith("rx_")]
    assert [f.code for f in found] == ["rx_match", "rx_match"]


def test_prescription_not_compared_without_data() -> None:
    assert rx_findings(OrderRx(None, None, None)) == []
    doc = real("R360_2.oma")  # no SPH or CYL in the file
    assert codes(run(doc, rx={"R": OrderRx(1.0, -0.5, 90)})) == []
    unreadable = with_records(doc, "SPH=one")
    (found,) = run(unreadable, rx={"R": OrderRx(1.0, -0.5, 90)})
    assert (found.code, found.severity) == ("rx_unreadable", "error")


def test_status() -> None:
    info = Finding("info", "x", "x")
    warning = Finding("warning", "x", "x")
    error = Finding("error", "x", "x")
    assert status([]) == "ok"
    assert status([info]) == "ok"
    assert status([info, warning]) == "warnings"
    assert status([warning, error, info]) == "errors"


def test_measurements_keyed_by_plain_strings_work_too() -> None:
    doc = real("R1000_1.oma")
    found = tracings(doc)
    plain = {str(eye): m for eye, m in measure_set(found).items()}
    assert check(doc, found, plain) == check(doc, found, measure_set(found))
    assert check(doc, TracingSet(None, None), {}) == [
        Finding("warning", "tracing_none", "the file holds no tracing")
    ]
