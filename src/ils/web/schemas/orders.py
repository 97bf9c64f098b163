"""Request and response bodies of ``/api/orders``.

The request nests the prescription per eye (``right``, ``left``), the lens and the
frame, as an order form reads; the table stores them flat with ``right_`` / ``left_``
/ ``lens_`` / ``frame_`` prefixes, and :mod:`ils.web.services.orders` maps between the
two. A lab sees an order's prescription (it grinds the lens) but only the patient's id:
names and contact details stay with the practice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from ils.domain.lens_options import Coating, LensType, Tint
from ils.domain.orders import LENS_INDEXES, LensDesign, Order, OrderStatus, PrismBase
from ils.domain.rx import mono_pds_agree
from ils.web.schemas.common import (
    Day,
    InputModel,
    Line64,
    Line100,
    Notes,
    OutputModel,
    RecordId,
)
from ils.web.schemas.prescription import (
    EyePrescription,
    PdBinocular,
    PdMonocular,
    SegHeight,
    checked_when_absent,
    stepped,
)

#: Designs with a reading portion: they cannot be made without an add.
MULTIFOCAL: Final = frozenset({LensDesign.BIFOCAL, LensDesign.PROGRESSIVE, LensDesign.OFFICE})
#: Designs centred on a measured fitting cross or segment top: no height, no lens.
NEEDS_HEIGHT: Final = frozenset({LensDesign.BIFOCAL, LensDesign.PROGRESSIVE})
MAX_COATINGS: Final = 10
MAX_PRICE_CENTS: Final = 100_000_000


def _known_index(value: Decimal) -> Decimal:
    """Only the indexes labs make; anything else would be silently substituted."""
    if value not in LENS_INDEXES:
        choices = ", ".join(f"{v:.2f}" for v in sorted(LENS_INDEXES))
        raise ValueError(f"must be one of {choices}")
    return value


LensIndex = Annotated[Decimal, AfterValidator(_known_index)]
# Boxed frame sizes in millimetres: wide enough for any frame, narrow enough to catch
# a value typed in centimetres or inches.
FrameSize = Annotated[Decimal, stepped("10", "100", "0.01", "mm")]
Bridge = Annotated[Decimal, stepped("5", "40", "0.01", "mm")]


class LensIn(InputModel):
    """The lens ordered: design, material (lens type), index, coatings and tint as codes.

    Codes, not free text, so the lab's treatments match (an unknown value is a 422
    listing the codes); documents print their labels. ``other`` means "see the notes".
    """

    design: LensDesign
    material: LensType | None = Field(default=None, description="Lens type code.")
    index: LensIndex | None = Field(default=None, description="1.50, 1.53 ... 1.74")
    coatings: list[Coating] = Field(
        default_factory=list, max_length=MAX_COATINGS, description="Coating codes."
    )
    tint: Tint | None = Field(default=None, description="Tint code; absent for clear lenses.")

    @field_validator("coatings")
    @classmethod
    def _distinct(cls, coatings: list[Coating]) -> list[Coating]:
        """A coating listed twice is a form error, not two coats."""
        if len(set(coatings)) != len(coatings):
            raise ValueError("must not repeat a coating")
        return coatings


class FrameIn(InputModel):
    """The frame the lenses go into; box sizes let the lab edge the lens."""

    brand: Line100 | None = None
    model: Line100 | None = None
    colour: Line64 | None = None
    box_a: FrameSize | None = None
    box_b: FrameSize | None = None
    dbl: Bridge | None = None
    ed: FrameSize | None = None


class OrderCreate(InputModel):
    """A new order: whose patient, which lab, the prescription, lens and frame.

    At least one pupillary distance is needed to centre the lenses: binocular, or both
    monocular ones; when all three are given the monos must add up to the binocular PD
    within 1 mm. Multifocal designs need an add on both eyes; bifocal and progressive
    lenses need a segment / fitting height on both eyes.
    """

    patient_id: RecordId
    lab_id: RecordId
    lens: LensIn
    right: EyePrescription
    left: EyePrescription
    pd_binocular: PdBinocular | None = Field(
        default=None,
        description="Millimetres, 40..80 in 0.5 steps. A PD is required: this, or both "
        "pd_right and pd_left.",
    )
    pd_right: PdMonocular | None = Field(
        default=None,
        description="Millimetres, 20..40 in 0.5 steps; required with pd_left when "
        "pd_binocular is absent.",
    )
    pd_left: PdMonocular | None = Field(
        default=None,
        description="Millimetres, 20..40 in 0.5 steps; required with pd_right when "
        "pd_binocular is absent; with all three, pd_right + pd_left within 1 mm of "
        "pd_binocular.",
    )
    seg_height_right: SegHeight | None = checked_when_absent(
        "Segment / fitting height, millimetres 10..40; required for bifocal and progressive lenses."
    )
    seg_height_left: SegHeight | None = checked_when_absent(
        "Segment / fitting height, millimetres 10..40; required for bifocal and progressive lenses."
    )
    frame: FrameIn | None = None
    due_date: Day | None = None
    price_cents: int | None = Field(default=None, ge=0, le=MAX_PRICE_CENTS)
    notes: Notes | None = None
    remake_of_id: RecordId | None = Field(
        default=None,
        description="The earlier order of the same patient and lab this order makes again.",
    )

    @field_validator("right", "left")
    @classmethod
    def _add_for_multifocal(cls, eye: EyePrescription, info: ValidationInfo) -> EyePrescription:
        """A bifocal or progressive without an add cannot be made."""
        lens = info.data.get("lens")
        if isinstance(lens, LensIn) and lens.design in MULTIFOCAL and eye.add is None:
            raise ValueError(f"add is required for {lens.design.value} lenses")
        return eye

    @field_validator("pd_left")
    @classmethod
    def _monos_match_binocular(cls, left: Decimal | None, info: ValidationInfo) -> Decimal | None:
        """Two mono PDs that do not add up to the binocular one: one of them is wrong."""
        binocular, right = info.data.get("pd_binocular"), info.data.get("pd_right")
        if left is None or binocular is None or right is None:
            return left
        if not mono_pds_agree(binocular, right, left):
            raise ValueError("pd_right + pd_left must be within 1 mm of pd_binocular")
        return left

    @field_validator("seg_height_right", "seg_height_left")
    @classmethod
    def _height_for_multifocal(cls, height: Decimal | None, info: ValidationInfo) -> Decimal | None:
        """A progressive's fitting cross or a bifocal's segment top must be placed."""
        lens = info.data.get("lens")
        if height is None and isinstance(lens, LensIn) and lens.design in NEEDS_HEIGHT:
            raise ValueError(f"is required for {lens.design.value} lenses")
        return height

    @model_validator(mode="after")
    def _some_pd(self) -> OrderCreate:
        """The lab centres the lenses on the PD: binocular or both monocular values."""
        has_mono = self.pd_right is not None and self.pd_left is not None
        if self.pd_binocular is None and not has_mono:
            raise ValueError("pd_binocular, or both pd_right and pd_left, is required")
        return self


class StatusChangeIn(InputModel):
    """A move of the order's lifecycle (``shipped`` goes through ``/ship``)."""

    status: OrderStatus
    note: Notes | None = None


class ShipIn(InputModel):
    """Shipping details the practice gets by e-mail."""

    tracking_number: Line64
    carrier: Line64 | None = None


class EnteredRx(OutputModel):
    """Sphere, cylinder and axis as the practice entered them (before transposition)."""

    sphere: Decimal | None
    cylinder: Decimal | None
    axis: int | None


class EyeOut(OutputModel):
    """One eye of an order's prescription, stored in minus-cylinder form.

    ``prism`` / ``prism_base`` is the horizontal component (in/out),
    ``prism_vertical`` / ``prism_vertical_base`` the vertical one (up/down);
    ``entered`` is the form the practice typed, ``None`` for orders from before it
    was kept.
    """

    sphere: Decimal | None
    cylinder: Decimal | None
    axis: int | None
    add: Decimal | None
    prism: Decimal | None
    prism_base: PrismBase | None
    prism_vertical: Decimal | None
    prism_vertical_base: PrismBase | None
    entered: EnteredRx | None


class LensOut(OutputModel):
    """The lens of an order."""

    design: LensDesign
    material: LensType | None
    index: Decimal | None
    coatings: list[Coating]
    tint: Tint | None
    original_text: dict[str, object] | None = Field(
        description="Free text of a pre-code order that became ``other`` (migration 0014)."
    )


class FrameOut(OutputModel):
    """The frame of an order."""

    brand: str | None
    model: str | None
    colour: str | None
    box_a: Decimal | None
    box_b: Decimal | None
    dbl: Decimal | None
    ed: Decimal | None


class StatusChangeOut(OutputModel):
    """One entry of the status history (``from_status`` is empty for the creation)."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    changed_by: str | None
    changed_at: datetime
    note: str | None


class OrderSummary(OutputModel):
    """An order in a list: enough to find it, no prescription."""

    id: str
    number: str
    company_id: str = Field(description="The ordering practice.")
    lab_id: str
    patient_id: str
    status: OrderStatus
    lens_design: LensDesign
    due_date: date | None
    tracking_number: str | None
    remake_of_id: str | None
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummary):
    """One order with its prescription, history and what the viewer may do next."""

    created_by: str | None
    right: EyeOut
    left: EyeOut
    pd_binocular: Decimal | None
    pd_right: Decimal | None
    pd_left: Decimal | None
    seg_height_right: Decimal | None
    seg_height_left: Decimal | None
    lens: LensOut
    frame: FrameOut
    carrier: str | None
    price_cents: int | None
    notes: str | None
    held_from_status: OrderStatus | None
    status_history: list[StatusChangeOut]
    next_statuses: list[OrderStatus] = Field(
        description="Statuses the viewer's side may move the order to with /status."
    )

    @classmethod
    def build(
        cls, order: Order, history: list[StatusChangeOut], next_statuses: list[OrderStatus]
    ) -> OrderOut:
        """From the flat row, nesting eyes, lens and frame back into the form's shape."""

        def eye(side: str) -> EyeOut:
            entered = (order.rx_as_entered or {}).get(side)
            return EyeOut.read_from(
                order,
                prefix=f"{side}_",
                entered=None if entered is None else EnteredRx.model_validate(entered),
            )

        return cls.read_from(
            order,
            right=eye("right"),
            left=eye("left"),
            lens=LensOut.read_from(
                order,
                prefix="lens_",
                coatings=[Coating(code) for code in order.coatings or []],
                tint=order.tint,
                original_text=order.lens_options_original,
            ),
            frame=FrameOut.read_from(order, prefix="frame_"),
            status_history=history,
            next_statuses=next_statuses,
        )
