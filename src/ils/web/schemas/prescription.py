"""Prescription fields with the clinical ranges and steps of docs/platform.md.

A lens is ground to the numbers a practice sends, so the API refuses anything a
phoropter could not have produced (0.3 D, axis 0, a cylinder without an axis) before
it reaches the lab. Values are ``Decimal``: a dioptre of 0.25 must stay 0.25 on its way
to ``Fixed2`` columns, never become 0.2499999. Error messages name the rule and never
quote the rejected value, because 422 bodies end up in logs and a prescription is
patient data.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from ils.domain.orders import PrismBase
from ils.web.schemas.common import InputModel

ZERO: Final = Decimal("0.00")
# Fixed2 columns store hundredths: a finer value would be silently rounded.
HUNDREDTH: Final = Decimal("0.01")
AXIS_MAX: Final = 180
ADD_LOW: Final = "0.75"
ADD_HIGH: Final = "4"

T = TypeVar("T")


def _signed(value: Decimal) -> str:
    """A limit as opticians write it: ``+30.00``, ``-10.00``, ``0.00``."""
    return f"{value:+.2f}" if value else "0.00"


def stepped_check(
    low: str, high: str, step: str, unit: str, *, signed: bool = False
) -> Callable[[Decimal], Decimal]:
    """A check keeping a ``Decimal`` within ``low..high`` on multiples of ``step``.

    One validator per rule (rather than ``ge``/``le``/``multiple_of``) gives one message
    stating the whole rule, so a client learns the range and the step from one error.
    """
    lo, hi, st = Decimal(low), Decimal(high), Decimal(step)
    fmt = _signed if signed else (lambda v: f"{v:.2f}")
    step_text = f" in {st:.2f} {unit} steps" if st > HUNDREDTH else f" {unit}"
    rule = f"must be between {fmt(lo)} and {fmt(hi)}{step_text}"

    def check(value: Decimal) -> Decimal:
        if not lo <= value <= hi or value % st != 0:
            raise ValueError(rule)
        return value.quantize(HUNDREDTH)

    return check


def stepped(low: str, high: str, step: str, unit: str, *, signed: bool = False) -> AfterValidator:
    """:func:`stepped_check` as a pydantic validator for ``Annotated`` field types."""
    return AfterValidator(stepped_check(low, high, step, unit, signed=signed))


Sphere = Annotated[Decimal, stepped("-30", "30", "0.25", "D", signed=True)]
Cylinder = Annotated[Decimal, stepped("-10", "10", "0.25", "D", signed=True)]
Prism = Annotated[Decimal, stepped("0", "10", "0.25", "prism dioptre")]
PdBinocular = Annotated[Decimal, stepped("40", "80", "0.5", "mm")]
PdMonocular = Annotated[Decimal, stepped("20", "40", "0.5", "mm")]
SegHeight = Annotated[Decimal, stepped("10", "40", "0.01", "mm")]


def _check_axis(axis: int) -> int:
    """Axes run 1..180 (0 and 180 are the same meridian; opticians write 180)."""
    if not 1 <= axis <= AXIS_MAX:
        raise ValueError(f"must be whole degrees from 1 to {AXIS_MAX}")
    return axis


Axis = Annotated[int, AfterValidator(_check_axis)]
# Not an Annotated type: 0 must reach the Refraction validator that reads it as "no add".
_check_add: Final = stepped_check(ADD_LOW, ADD_HIGH, "0.25", "D", signed=True)


def _required_with(amount_field: str) -> AfterValidator:
    """The check of a value that only means something with a non-zero
    ``amount_field`` (an axis with a cylinder, a base with a prism): dropped without
    one, required with one.

    An amount that failed its own check is not in ``info.data``; the value is then let
    through unchanged, since one error for the field is enough.
    """

    def check(value: T | None, info: ValidationInfo) -> T | None:
        if amount_field not in info.data:
            return value
        amount = info.data[amount_field]
        if amount is None or amount == ZERO:
            return None
        if value is None:
            raise ValueError(f"is required when {amount_field} is not zero")
        return value

    return AfterValidator(check)


def checked_when_absent(description: str) -> Any:
    """An optional body field (default ``None``) whose validators run even when it is
    left out. Pydantic skips them for a default unless told; a field that depends on
    another (an axis on its cylinder, a GOC number on the outcome) needs them to refuse
    its absence where the other field requires it."""
    return Field(default=None, validate_default=True, description=description)


class Refraction(InputModel):
    """One eye's refraction: sphere, cylinder with its axis, reading addition.

    A zero cylinder has no axis: one sent anyway is dropped, since axis without
    cylinder is meaningless and storing it would suggest an astigmatic correction.
    An add of zero means "no add" (single vision), as practice software sends it.
    """

    sphere: Sphere = Field(description="Dioptres, -30.00..+30.00 in 0.25 steps (0 = plano).")
    cylinder: Cylinder = Field(default=ZERO, description="Dioptres, -10.00..+10.00 in 0.25 steps.")
    axis: Annotated[Axis | None, _required_with("cylinder")] = checked_when_absent(
        "Degrees 1..180; required when cylinder is not zero."
    )
    add: Decimal | None = checked_when_absent(
        "Reading addition, +0.75..+4.00 in 0.25 steps; absent or 0 for none."
    )

    @field_validator("add")
    @classmethod
    def _add_range(cls, add: Decimal | None) -> Decimal | None:
        """Treat 0 as no add; otherwise +0.75..+4.00 in 0.25 steps."""
        if add is None or add == ZERO:
            return None
        return _check_add(add)


HORIZONTAL_BASES: Final = frozenset({PrismBase.IN, PrismBase.OUT})
VERTICAL_BASES: Final = frozenset({PrismBase.UP, PrismBase.DOWN})


class EyePrescription(Refraction):
    """One eye of a lens order: the refraction plus a prism, compound if need be.

    ``prism`` / ``prism_base`` is one prism in any direction, as most prescriptions
    carry. A compound prism (base in and base up on one eye) adds
    ``prism_vertical`` / ``prism_vertical_base`` (up or down); ``prism_base`` must then
    be in or out. :meth:`horizontal` and :meth:`vertical` give the two components the
    order stores.
    """

    prism: Prism | None = Field(default=None, description="Prism dioptres, 0..10 in 0.25 steps.")
    prism_base: Annotated[PrismBase | None, _required_with("prism")] = checked_when_absent(
        "Base direction (in, out, up, down); required when prism is not zero."
    )
    prism_vertical: Prism | None = Field(
        default=None,
        description="A compound prism's vertical component, 0..10 in 0.25 steps.",
    )
    prism_vertical_base: PrismBase | None = checked_when_absent(
        "up or down; required when prism_vertical is not zero."
    )

    @field_validator("prism_vertical_base")
    @classmethod
    def _vertical_base(cls, base: PrismBase | None, info: ValidationInfo) -> PrismBase | None:
        """The vertical component's base is up or down; the other one must be in/out."""
        if "prism_vertical" not in info.data:
            return base
        amount = info.data["prism_vertical"]
        if amount is None or amount == ZERO:
            return None
        if base not in VERTICAL_BASES:
            raise ValueError("must be up or down when prism_vertical is not zero")
        if info.data.get("prism_base") in VERTICAL_BASES:
            raise ValueError("prism_base must be in or out when a vertical component is also given")
        return base

    def horizontal(self) -> tuple[Decimal, PrismBase] | None:
        """The base in/out component, if any."""
        if self.prism and self.prism_base in HORIZONTAL_BASES:
            return self.prism, self.prism_base
        return None

    def vertical(self) -> tuple[Decimal, PrismBase] | None:
        """The base up/down component, if any."""
        if self.prism_vertical and self.prism_vertical_base is not None:
            return self.prism_vertical, self.prism_vertical_base
        if self.prism and self.prism_base in VERTICAL_BASES:
            return self.prism, self.prism_base
        return None
