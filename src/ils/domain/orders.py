"""Lens orders from a practice to a lab, their status history and lifecycle rules.

The lifecycle is data (:data:`TRANSITIONS`) plus one pure function
(:func:`allowed_transition`), so the API, the tests and the documentation read the same
rules::

    submitted → accepted → in_production → quality_check → shipped → delivered
    submitted, accepted → cancelled
    accepted, in_production, quality_check → on_hold → (back to the state it left)

Practices cancel their own submitted orders; labs make every other move; ``shipped``
is reached only through the ship endpoint (it needs a tracking number and carrier).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.clinical import Patient
from ils.domain.companies import Company, User
from ils.domain.lens_options import LensType, Tint
from ils.domain.types import (
    Fixed2,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
    utcnow,
)
from ils.errors import ILSError


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    IN_PRODUCTION = "in_production"
    QUALITY_CHECK = "quality_check"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


class Side(StrEnum):
    """Which party of an order acts: the ordering practice or the lab making it."""

    PRACTICE = "practice"
    LAB = "lab"


class PrismBase(StrEnum):
    """Direction of a prism's base."""

    UP = "up"
    DOWN = "down"
    IN = "in"
    OUT = "out"


class LensDesign(StrEnum):
    """The lens design ordered."""

    SINGLE_VISION = "single_vision"
    BIFOCAL = "bifocal"
    PROGRESSIVE = "progressive"
    OFFICE = "office"


#: Refractive indexes the labs make (``orders.lens_index``).
LENS_INDEXES = frozenset(
    Decimal(v) for v in ("1.50", "1.53", "1.56", "1.59", "1.60", "1.67", "1.74")
)

#: States an order can be put on hold from (and is returned to afterwards).
HOLDABLE = frozenset({OrderStatus.ACCEPTED, OrderStatus.IN_PRODUCTION, OrderStatus.QUALITY_CHECK})

#: States nothing moves out of.
FINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED})

#: Every move other than leaving ``on_hold``, and the side allowed to make it.
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], Side] = {
    (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED): Side.LAB,
    (OrderStatus.ACCEPTED, OrderStatus.IN_PRODUCTION): Side.LAB,
    (OrderStatus.IN_PRODUCTION, OrderStatus.QUALITY_CHECK): Side.LAB,
    (OrderStatus.QUALITY_CHECK, OrderStatus.SHIPPED): Side.LAB,
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED): Side.LAB,
    (OrderStatus.SUBMITTED, OrderStatus.CANCELLED): Side.PRACTICE,
    (OrderStatus.ACCEPTED, OrderStatus.CANCELLED): Side.LAB,
    **{(state, OrderStatus.ON_HOLD): Side.LAB for state in HOLDABLE},
}

#: States reached only through a dedicated endpoint, never the generic status change.
SHIP_ENDPOINT_ONLY = frozenset({OrderStatus.SHIPPED})


class InvalidTransitionError(ILSError):
    """A status change the lifecycle does not allow for that side (the API answers 409)."""

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus, side: Side) -> None:
        super().__init__(f"{side} may not move an order from {from_status} to {to_status}")
        self.from_status = from_status
        self.to_status = to_status
        self.side = side


def allowed_transition(
    from_status: OrderStatus,
    to_status: OrderStatus,
    side: Side,
    *,
    held_from: OrderStatus | None = None,
    via_ship: bool = False,
) -> bool:
    """Whether ``side`` may move an order from ``from_status`` to ``to_status``.

    Args:
        from_status: The order's current status.
        to_status: The status asked for.
        side: Who asks: the order's practice or its lab.
        held_from: For an order ``on_hold``, the status it was put on hold from; it may
            only go back there. ``None`` for an order on hold means the state is
            unknown, and nothing is allowed.
        via_ship: ``True`` from the ship endpoint, the only way to ``shipped`` (and
            that endpoint may do nothing else).
    """
    if (to_status in SHIP_ENDPOINT_ONLY) != via_ship:
        return False
    if from_status == OrderStatus.ON_HOLD:
        return side == Side.LAB and held_from in HOLDABLE and to_status == held_from
    return TRANSITIONS.get((from_status, to_status)) == side


def next_statuses(
    from_status: OrderStatus, side: Side, *, held_from: OrderStatus | None = None
) -> list[OrderStatus]:
    """The statuses ``side`` may move to through the generic status change (UI buttons)."""
    return [
        to for to in OrderStatus if allowed_transition(from_status, to, side, held_from=held_from)
    ]


class Order(IdMixin, TimestampMixin, Base):
    """A lens order from a practice (``company_id``) to a lab (``lab_id``).

    Both companies see the order; everything else about the patient stays with the
    practice. Prescription fields are per eye with ``right_`` / ``left_`` prefixes; the
    API validates ranges and steps, the CHECKs below only guard what can never be right.

    ``held_from_status`` records the state an order left for ``on_hold`` so it can go
    back exactly there; it is cleared when the hold ends.
    """

    __tablename__ = "orders"
    __table_args__ = (
        # Each side's orders newest first, of any status or of one (``GET /api/orders``
        # reads a page in order and stops).
        Index("ix_orders_company_created", "company_id", "created_at"),
        Index("ix_orders_company_status_created", "company_id", "status", "created_at"),
        Index("ix_orders_lab_created", "lab_id", "created_at"),
        Index("ix_orders_lab_status_created", "lab_id", "status", "created_at"),
        Index("ix_orders_created_at", "created_at"),
        CheckConstraint("lab_id <> company_id", name="lab_is_not_practice"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        CheckConstraint("right_axis BETWEEN 1 AND 180", name="right_axis_range"),
        CheckConstraint("left_axis BETWEEN 1 AND 180", name="left_axis_range"),
        CheckConstraint("right_prism >= 0", name="right_prism_non_negative"),
        CheckConstraint("left_prism >= 0", name="left_prism_non_negative"),
    )

    #: ``ORD-YYYY-NNNNNN`` from :mod:`ils.domain.numbering`, unique platform-wide.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    company_id: Mapped[str] = foreign_id("companies.id")
    lab_id: Mapped[str] = foreign_id("companies.id")
    patient_id: Mapped[str] = foreign_id("patients.id", index=True)
    created_by: Mapped[str | None] = foreign_id("users.id", index=True)
    status: Mapped[OrderStatus] = mapped_column(
        StrEnumType(OrderStatus, 16), default=OrderStatus.SUBMITTED
    )
    held_from_status: Mapped[OrderStatus | None] = mapped_column(StrEnumType(OrderStatus, 16))

    right_sphere: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_cylinder: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_axis: Mapped[int | None] = mapped_column(Integer)
    right_add: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_prism: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_prism_base: Mapped[PrismBase | None] = mapped_column(StrEnumType(PrismBase, 8))
    left_sphere: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_cylinder: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_axis: Mapped[int | None] = mapped_column(Integer)
    left_add: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_prism: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_prism_base: Mapped[PrismBase | None] = mapped_column(StrEnumType(PrismBase, 8))
    #: A compound prism's vertical component (base up or down); ``*_prism`` /
    #: ``*_prism_base`` hold the horizontal one (base in or out).
    right_prism_vertical: Mapped[Decimal | None] = mapped_column(Fixed2())
    right_prism_vertical_base: Mapped[PrismBase | None] = mapped_column(StrEnumType(PrismBase, 8))
    left_prism_vertical: Mapped[Decimal | None] = mapped_column(Fixed2())
    left_prism_vertical_base: Mapped[PrismBase | None] = mapped_column(StrEnumType(PrismBase, 8))
    #: Sphere, cylinder and axis are stored in minus-cylinder form; this keeps the
    #: form the practice entered (``{"right": {"sphere": "+1.00", "cylinder": "+0.50",
    #: "axis": 90}, "left": ...}``) for display. ``None`` for rows before revision 0014.
    rx_as_entered: Mapped[dict[str, dict[str, str | int | None]] | None] = mapped_column(JSON)
    pd_binocular: Mapped[Decimal | None] = mapped_column(Fixed2())
    pd_right: Mapped[Decimal | None] = mapped_column(Fixed2())
    pd_left: Mapped[Decimal | None] = mapped_column(Fixed2())
    seg_height_right: Mapped[Decimal | None] = mapped_column(Fixed2())
    seg_height_left: Mapped[Decimal | None] = mapped_column(Fixed2())

    #: A :class:`~ils.domain.lens_options.LensType` code.
    lens_material: Mapped[LensType | None] = mapped_column(StrEnumType(LensType, 64))
    lens_index: Mapped[Decimal | None] = mapped_column(Fixed2())
    lens_design: Mapped[LensDesign] = mapped_column(StrEnumType(LensDesign, 16))
    #: :class:`~ils.domain.lens_options.Coating` codes, e.g.
    #: ``["anti_reflective", "hard_coat"]``.
    coatings: Mapped[list[str]] = mapped_column(JSON, default=list)
    tint: Mapped[Tint | None] = mapped_column(StrEnumType(Tint, 64))
    #: The free text of rows migrated to codes (revision 0014) that no known spelling
    #: matched and became ``other``: ``{"material": ..., "coatings": [...], "tint": ...}``.
    lens_options_original: Mapped[dict[str, object] | None] = mapped_column(JSON)

    frame_brand: Mapped[str | None] = mapped_column(String(100))
    frame_model: Mapped[str | None] = mapped_column(String(100))
    frame_colour: Mapped[str | None] = mapped_column(String(64))
    #: Boxed lens width and depth, bridge (distance between lenses), effective diameter.
    frame_box_a: Mapped[Decimal | None] = mapped_column(Fixed2())
    frame_box_b: Mapped[Decimal | None] = mapped_column(Fixed2())
    frame_dbl: Mapped[Decimal | None] = mapped_column(Fixed2())
    frame_ed: Mapped[Decimal | None] = mapped_column(Fixed2())
    #: The traced shape of the right lens: ``[[x, y], ...]`` in millimetres around its
    #: boxing centre, x towards the wearer's left as seen from the front (nasal for the
    #: right lens), y up, in drawing order. The left lens is its mirror image. Filled
    #: from an OMA/VCA tracing file (the OMA worker); drawn on the lab work ticket.
    frame_outline: Mapped[list[list[float]] | None] = mapped_column(JSON)

    due_date: Mapped[date | None] = mapped_column(Date)
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(64))
    price_cents: Mapped[int | None] = mapped_column(BigInteger)
    notes: Mapped[str | None] = mapped_column(Text)
    #: The earlier order this one makes again (a remake: wrong power, breakage,
    #: non-adapt); the remake rate of the insights counts these.
    remake_of_id: Mapped[str | None] = foreign_id("orders.id", index=True)

    company: Mapped[Company] = relationship(foreign_keys=[company_id])
    lab: Mapped[Company] = relationship(foreign_keys=[lab_id])
    patient: Mapped[Patient] = relationship()
    creator: Mapped[User | None] = relationship(foreign_keys=[created_by])
    #: Read-only view of the history; new entries come from :meth:`change_status`.
    status_changes: Mapped[list[OrderStatusChange]] = relationship(
        viewonly=True, order_by="OrderStatusChange.changed_at"
    )

    def side_of(self, company_id: str) -> Side | None:
        """The side ``company_id`` takes on this order, ``None`` for a stranger (404)."""
        if company_id == self.company_id:
            return Side.PRACTICE
        if company_id == self.lab_id:
            return Side.LAB
        return None

    def change_status(
        self,
        to_status: OrderStatus,
        side: Side,
        *,
        changed_by: str | None,
        note: str | None = None,
        via_ship: bool = False,
        at: datetime | None = None,
    ) -> OrderStatusChange:
        """Move the order to ``to_status`` and return the history entry to ``add``.

        The entry is linked through its ``order`` relationship, so it works for an order
        not flushed yet; the caller adds it to the session in the same transaction.

        Raises:
            InvalidTransitionError: the lifecycle does not allow the move for ``side``.
        """
        from_status = self.status
        if not allowed_transition(
            from_status, to_status, side, held_from=self.held_from_status, via_ship=via_ship
        ):
            raise InvalidTransitionError(from_status, to_status, side)
        self.held_from_status = from_status if to_status == OrderStatus.ON_HOLD else None
        self.status = to_status
        return OrderStatusChange(
            order=self,
            from_status=from_status,
            to_status=to_status,
            changed_by=changed_by,
            changed_at=at or utcnow(),
            note=note,
        )


class OrderStatusChange(IdMixin, Base):
    """One entry of an order's status history (``from_status`` is empty on creation)."""

    __tablename__ = "order_status_changes"

    order_id: Mapped[str] = foreign_id("orders.id", ondelete="CASCADE", index=True)
    from_status: Mapped[OrderStatus | None] = mapped_column(StrEnumType(OrderStatus, 16))
    to_status: Mapped[OrderStatus] = mapped_column(StrEnumType(OrderStatus, 16))
    changed_by: Mapped[str | None] = foreign_id("users.id", index=True)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship()
