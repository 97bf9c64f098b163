"""The Rx cross-check, field by field, in both cylinder conventions.

Tolerances are those of BS EN ISO 21987:2017 as written in the standard's tables
(copied here as literals, not taken from the code): 0.12 D on a meridian up to 6 D,
0.09 D on a cylinder up to 0.75 D, 4 degrees on a 1.00 D cylinder's axis, 0.12 D on
an add up to 4 D, 0.25 prism dioptre per component up to 2, 1 mm on centration.
"""

from __future__ import annotations

import pytest

from ils.workers.oma.finding import Finding
from ils.workers.oma.records import parse
from ils.workers.oma.rx import OrderRx, prescription


def findings(*records: str, right: OrderRx, left: OrderRx | None = None) -> list[Finding]:
    doc = parse(("\r\n".join(["REQ=FRM", *records]) + "\r\n").encode())
    rx = {"R": right} if left is None else {"R": right, "L": left}
    return prescription(doc, rx)


def codes(found: list[Finding]) -> list[str]:
    return [f.code for f in found]


# The same lens, -2.00 / -1.00 x 30, written in minus and in plus cylinder form.
MINUS = ("SPH=-2.00;-2.00", "CYL=-1.00;-1.00", "AX=30;30")
PLUS = ("SPH=-3.00;-3.00", "CYL=+1.00;+1.00", "AX=120;120")
ORDER = OrderRx(-2.0, -1.0, 30)
ORDER_PLUS = OrderRx(-3.0, 1.0, 120)


@pytest.mark.parametrize("file_rx", [MINUS, PLUS], ids=["file-minus", "file-plus"])
@pytest.mark.parametrize("order", [ORDER, ORDER_PLUS], ids=["order-minus", "order-plus"])
def test_the_same_lens_matches_in_either_convention(
    file_rx: tuple[str, ...], order: OrderRx
) -> None:
    assert codes(findings(*file_rx, right=order)) == ["rx_match"]


@pytest.mark.parametrize("file_rx", [MINUS, PLUS], ids=["file-minus", "file-plus"])
@pytest.mark.parametrize(
    ("order", "code"),
    [
        (OrderRx(-2.25, -1.0, 30), "rx_sphere_mismatch"),
        (OrderRx(-2.0, -1.25, 30), "rx_cylinder_mismatch"),
        (OrderRx(-2.0, -1.0, 35), "rx_axis_mismatch"),  # 5 > 4 degrees at 1.00 D
        # Plus-cylinder orders: +0.25 D sphere error survives the transposition.
        (OrderRx(-2.75, 1.0, 120), "rx_sphere_mismatch"),
        (OrderRx(-3.0, 1.0, 125), "rx_axis_mismatch"),
    ],
)
def test_each_power_field_is_compared(file_rx: tuple[str, ...], order: OrderRx, code: str) -> None:
    assert code in codes(findings(*file_rx, right=order))


def test_power_tolerances_are_the_standards() -> None:
    within = OrderRx(-2.12, -0.91, 34)  # 0.12 D, 0.09 D, 4 degrees
    assert codes(findings(*MINUS, right=within)) == ["rx_match"]


@pytest.mark.parametrize(
    ("order_add", "expected"),
    [(1.25, "rx_add_match"), (1.37, "rx_add_match"), (2.00, "rx_add_mismatch")],
)
def test_add(order_add: float, expected: str) -> None:
    found = findings("ADD=1.25;1.25", right=OrderRx(add=order_add))
    assert codes(found) == [expected]
    assert found[0].severity == ("error" if expected.endswith("mismatch") else "info")


@pytest.mark.parametrize(
    ("records", "order", "expected"),
    [
        # 2 base in ordered, the file says no prism: found.
        (("PRVM=0.00;0.00",), OrderRx(prism_in=2.0), "rx_prism_mismatch"),
        # Right eye: 0 degrees is nasal, base in.
        (("PRVM=2.00;2.00", "PRVA=0;0"), OrderRx(prism_in=2.0), "rx_prism_match"),
        (("PRVM=2.00;2.00", "PRVA=180;180"), OrderRx(prism_in=2.0), "rx_prism_mismatch"),
        # Base up against base down.
        (("PRVM=1.00;1.00", "PRVA=90;90"), OrderRx(prism_up=-1.0), "rx_prism_mismatch"),
        (("PRVM=1.00;1.00", "PRVA=90;90"), OrderRx(prism_up=1.0), "rx_prism_match"),
        # Compound: 2 in and 1 up is 2.236 at 26.57 degrees.
        (
            ("PRVM=2.236;2.236", "PRVA=26.57;26.57"),
            OrderRx(prism_in=2.0, prism_up=1.0),
            "rx_prism_match",
        ),
        (("PRVM=2.236;2.236", "PRVA=26.57;26.57"), OrderRx(prism_in=2.0), "rx_prism_mismatch"),
    ],
)
def test_prism_both_components(records: tuple[str, ...], order: OrderRx, expected: str) -> None:
    assert codes(findings(*records, right=order)) == [expected]


def test_left_eye_prism_angle_is_mirrored() -> None:
    # For the left eye, 180 degrees (the viewer's left) is nasal: base in.
    found = findings(
        "PRVM=2.00;2.00", "PRVA=0;180", right=OrderRx(prism_in=2.0), left=OrderRx(prism_in=2.0)
    )
    assert codes(found) == ["rx_prism_match", "rx_prism_match"]


@pytest.mark.parametrize(
    ("records", "order", "expected"),
    [
        (("IPD=32.0;31.5",), OrderRx(pd=32.5), ["rx_centration_match"]),
        (("IPD=32.0;31.5",), OrderRx(pd=33.5), ["rx_pd_mismatch"]),
        (("SEGHT=18.0;18.0",), OrderRx(height=18.5), ["rx_centration_match"]),
        (("SEGHT=18.0;18.0", "OCHT=22;22"), OrderRx(height=22.0), ["rx_height_mismatch"]),
        (("OCHT=22;22",), OrderRx(height=22.0), ["rx_centration_match"]),
        (("IPD=32.0;32.0", "NPD=34.0;34.0"), OrderRx(), ["rx_npd_implausible"]),
        (("IPD=32.0;32.0", "NPD=30.5;30.5"), OrderRx(), []),
    ],
)
def test_pd_npd_and_fitting_height(
    records: tuple[str, ...], order: OrderRx, expected: list[str]
) -> None:
    assert codes(findings(*records, right=order)) == expected


def test_an_unreadable_value_is_an_error() -> None:
    (found,) = findings("ADD=two", right=OrderRx(add=2.0))
    assert (found.code, found.severity) == ("rx_unreadable", "error")


@pytest.mark.parametrize(
    ("binocular", "expected"), [(64.0, "rx_centration_match"), (66.5, "rx_pd_mismatch")]
)
def test_binocular_pd_against_the_sum_of_the_files(binocular: float, expected: str) -> None:
    doc = parse(b"REQ=FRM\r\nIPD=32.0;31.5\r\n")
    found = prescription(doc, {"R": OrderRx(), "L": OrderRx()}, binocular_pd=binocular)
    assert codes(found) == [expected]
    # With monocular PDs on the order those are compared instead.
    found = prescription(doc, {"R": OrderRx(pd=32.0)}, binocular_pd=binocular)
    assert codes(found) == ["rx_centration_match"]
