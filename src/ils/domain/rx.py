"""Prescription arithmetic the API and the lab agree on.

Labs surface in one cylinder convention, and UK practice and most lab software use
minus cylinder. A prescription written in plus cylinder describes the same lens, so
orders are stored transposed to minus cylinder (:func:`to_minus_cylinder`) while the
form the practice entered is kept for display: a lab comparing two eyes, or a
tracing's Rx, then never compares +0.50 x 90 against -0.50 x 180.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, NamedTuple

AXIS_MAX: Final = 180
QUARTER_TURN: Final = 90
#: Mono PDs may differ from the binocular PD by this much (two 0.5 mm roundings).
PD_TOLERANCE_MM: Final = Decimal("1.0")


class SphCyl(NamedTuple):
    """Sphere, cylinder and axis of one eye (axis ``None`` when cylinder is zero)."""

    sphere: Decimal
    cylinder: Decimal
    axis: int | None


def to_minus_cylinder(sphere: Decimal, cylinder: Decimal, axis: int | None) -> SphCyl:
    """The same lens written in minus cylinder.

    Transposition: new sphere = sphere + cylinder, cylinder changes sign, axis turns
    by 90 degrees (kept within 1..180). A minus or zero cylinder is returned as is.
    """
    if cylinder <= 0 or axis is None:
        return SphCyl(sphere, cylinder, axis)
    turned = (axis + QUARTER_TURN) % AXIS_MAX or AXIS_MAX
    return SphCyl(sphere + cylinder, -cylinder, turned)


def mono_pds_agree(binocular: Decimal, right: Decimal, left: Decimal) -> bool:
    """Whether both mono PDs add up to the binocular PD within :data:`PD_TOLERANCE_MM`."""
    return abs(right + left - binocular) <= PD_TOLERANCE_MM
