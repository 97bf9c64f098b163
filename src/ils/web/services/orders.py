"""Order use cases: create, list, show, move through the lifecycle, ship.

Each function does the whole of one request inside the request's transaction: the
rows, the status history and the jobs (queued with ``session=``), so the request
either happens completely or not at all. The routers only wire HTTP to these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.orders import (
    Order,
    OrderStatus,
    OrderStatusChange,
    Side,
    next_statuses,
)
from ils.domain.rx import to_minus_cylinder
from ils.domain.scoping import get_scoped
from ils.errors import ForbiddenError
from ils.jobs.helpers import JobHelpers
from ils.web.schemas.orders import OrderCreate, OrderOut, OrderSummary, StatusChangeOut
from ils.web.schemas.prescription import EyePrescription
from ils.web.services.common import (
    field_error,
    query_error,
    trading_partner,
)

#: Practice roles that place and cancel orders (lab_tech belongs to labs).
PRACTICE_ORDER_ROLES: Final = frozenset(
    {Role.PLATFORM_ADMIN, Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF}
)
#: Moves that are commercial decisions, not production steps: not for lab_tech, whose
#: role is "change production status, ship" (docs/platform.md, roles).
_NOT_PRODUCTION: Final = frozenset({OrderStatus.CANCELLED, OrderStatus.DELIVERED})
ORDER_OWNERS: Final = ("company_id", "lab_id")


def may_move(role: Role, side: Side, from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """Whether ``role`` on ``side`` may ask for this move at all (the lifecycle decides
    separately whether the move exists). False answers 403, an impossible move 409."""
    if side == Side.PRACTICE:
        return role in PRACTICE_ORDER_ROLES
    if role != Role.LAB_TECH:
        return True
    accepting = from_status == OrderStatus.SUBMITTED and to_status == OrderStatus.ACCEPTED
    return to_status not in _NOT_PRODUCTION and not accepting


def statuses_for(order: Order, side: Side, role: Role) -> list[OrderStatus]:
    """The ``/status`` moves the viewer may make now (the UI's buttons)."""
    return [
        to
        for to in next_statuses(order.status, side, held_from=order.held_from_status)
        if may_move(role, side, order.status, to)
    ]


#: The sphere range of docs/platform.md, which also holds after transposition.
MAX_SPHERE: Final = Decimal("30")


def _eye_columns(prefix: str, eye: EyePrescription) -> dict[str, object]:
    """One eye's columns: minus-cylinder form, prism split into its two components."""
    stored = to_minus_cylinder(eye.sphere, eye.cylinder, eye.axis)
    if abs(stored.sphere) > MAX_SPHERE:
        # +29.00 / +2.00 passes each range but is +31.00 / -2.00 in minus cylinder.
        raise field_error(f"{prefix}.sphere", "must stay within ±30.00 D in minus-cylinder form")
    horizontal, vertical = eye.horizontal(), eye.vertical()
    return {
        f"{prefix}_sphere": stored.sphere,
        f"{prefix}_cylinder": stored.cylinder,
        f"{prefix}_axis": stored.axis,
        f"{prefix}_add": eye.add,
        f"{prefix}_prism": horizontal[0] if horizontal else None,
        f"{prefix}_prism_base": horizontal[1] if horizontal else None,
        f"{prefix}_prism_vertical": vertical[0] if vertical else None,
        f"{prefix}_prism_vertical_base": vertical[1] if vertical else None,
    }


def _entered(eye: EyePrescription) -> dict[str, str | int | None]:
    """The eye as typed, kept for display (strings: JSON has no exact decimals)."""
    return {"sphere": str(eye.sphere), "cylinder": str(eye.cylinder), "axis": eye.axis}


def _order_columns(body: OrderCreate) -> dict[str, object]:
    """The flat columns of the nested request."""
    frame = body.frame
    return {
        **_eye_columns("right", body.right),
        **_eye_columns("left", body.left),
        "rx_as_entered": {"right": _entered(body.right), "left": _entered(body.left)},
        "pd_binocular": body.pd_binocular,
        "pd_right": body.pd_right,
        "pd_left": body.pd_left,
        "seg_height_right": body.seg_height_right,
        "seg_height_left": body.seg_height_left,
        "lens_design": body.lens.design,
        "lens_material": body.lens.material,
        "lens_index": body.lens.index,
        "coatings": [code.value for code in body.lens.coatings],
        "tint": body.lens.tint,
        "frame_brand": frame.brand if frame else None,
        "frame_model": frame.model if frame else None,
        "frame_colour": frame.colour if frame else None,
        "frame_box_a": frame.box_a if frame else None,
        "frame_box_b": frame.box_b if frame else None,
        "frame_dbl": frame.dbl if frame else None,
        "frame_ed": frame.ed if frame else None,
        "due_date": body.due_date,
        "price_cents": body.price_cents,
        "notes": body.notes,
        "remake_of_id": body.remake_of_id,
    }


def status_label(status: OrderStatus) -> str:
    """``in_production`` → ``in production``, for notification texts."""
    return status.value.replace("_", " ")


async def create_order(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    practice: Company,
    body: OrderCreate,
    now: datetime,
    numbering: AsyncEngine | None = None,
) -> tuple[Order, OrderStatusChange]:
    """Create the order, its first history entry and its jobs; returns both rows
    (the history of a new order is that entry: no need to read it back).

    Queues the order-confirmation e-mail to ``user``, the order sheet and lab work
    ticket PDFs, and one order notification job for the lab (its worker notifies
    every user of the lab active when it runs).

    Raises:
        InvalidFieldError: ``patient_id`` is not a patient of this practice,
            ``lab_id`` is not an active lab or has no accepted marketplace
            connection with the practice, ``due_date`` has passed, or
            ``remake_of_id`` is not an order of the same practice, patient and lab,
            or a sphere leaves ±30.00 D once transposed to minus cylinder
            (422; nothing written, nothing queued).
    """
    patient = await session.scalar(
        select(Patient.id).where(Patient.id == body.patient_id, Patient.company_id == practice.id)
    )
    if patient is None:
        raise field_error("patient_id", "must be a patient of your practice")
    lab = await trading_partner(session, practice.id, body.lab_id, CompanyKind.LAB, field="lab_id")
    today = practice.local_date(now)
    if body.due_date is not None and body.due_date < today:
        raise field_error("due_date", "must not be in the past")
    if body.remake_of_id is not None:
        await _check_remake(session, body, practice.id)
    columns = _order_columns(body)  # may refuse a transposed sphere: before the number
    # Late, once the checks have passed: a number taken by a failed order is a gap.
    number = await allocate_number(session, NumberKind.ORDER, year=today.year, own_engine=numbering)
    order = Order(
        number=number,
        company_id=practice.id,
        lab_id=lab.id,
        patient_id=body.patient_id,
        created_by=user.id,
        status=OrderStatus.SUBMITTED,
        **columns,
    )
    session.add(order)
    submitted = OrderStatusChange(
        order=order,
        from_status=None,
        to_status=OrderStatus.SUBMITTED,
        changed_by=user.id,
        changed_at=now,
    )
    session.add(submitted)
    await session.flush()
    await helpers.queue_order_confirmation_email(order.id, user.id, session=session)
    await helpers.queue_order_sheet_pdf(order.id, session=session)
    await helpers.queue_lab_work_ticket_pdf(order.id, session=session)
    message = f"New order {order.number} from {practice.name}"
    await helpers.queue_company_order_notification(
        lab.id, order.id, OrderStatus.SUBMITTED.value, message, session=session
    )
    return order, submitted


async def _check_remake(session: AsyncSession, body: OrderCreate, practice_id: str) -> None:
    """A remake redoes an order of this practice, for the same patient, at the same lab."""
    original = await session.scalar(
        select(Order).where(Order.id == body.remake_of_id, Order.company_id == practice_id)
    )
    if original is None:
        raise field_error("remake_of_id", "must be an order of your practice")
    if original.patient_id != body.patient_id or original.lab_id != body.lab_id:
        raise field_error("remake_of_id", "must be an order of the same patient and lab")


async def order_history(session: AsyncSession, order_id: str) -> list[OrderStatusChange]:
    """The order's status history, oldest first."""
    rows = await session.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.order_id == order_id)
        .order_by(OrderStatusChange.changed_at)
    )
    return list(rows.all())


async def order_out(
    session: AsyncSession,
    order: Order,
    user: User,
    history_rows: Sequence[OrderStatusChange] | None = None,
) -> OrderOut:
    """The response for ``order`` as ``user`` sees it (history and their next moves);
    ``history_rows`` when the caller already holds the whole history."""
    side = order.side_of(user.company_id)
    if history_rows is None:
        history_rows = await order_history(session, order.id)
    history = [StatusChangeOut.model_validate(row) for row in history_rows]
    moves = statuses_for(order, side, user.role) if side is not None else []
    return OrderOut.build(order, history, moves)


#: The order columns a list shows.
SUMMARY_COLUMNS: Final = tuple(getattr(Order, name) for name in OrderSummary.model_fields)


@dataclass(frozen=True)
class OrderFilters:
    """The filters of ``GET /api/orders``; dates are the viewer's local calendar days."""

    status: OrderStatus | None = None
    patient_id: str | None = None
    created_from: date | None = None
    created_to: date | None = None


def _conditions(company: Company, filters: OrderFilters) -> list[ColumnElement[bool]]:
    """The filters as conditions on ``orders`` (the caller adds the company's side)."""
    if (
        filters.created_from is not None
        and filters.created_to is not None
        and filters.created_from > filters.created_to
    ):
        raise query_error("created_to", "must not be before created_from")
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Order.status == filters.status)
    if filters.patient_id is not None:
        conditions.append(Order.patient_id == filters.patient_id)
    zone = company.zone
    if filters.created_from is not None:
        start = datetime.combine(filters.created_from, time.min, zone)
        conditions.append(Order.created_at >= start)
    if filters.created_to is not None:
        end = datetime.combine(filters.created_to + timedelta(days=1), time.min, zone)
        conditions.append(Order.created_at < end)
    return conditions


async def list_orders(
    session: AsyncSession, company: Company, filters: OrderFilters, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
    """A page of the orders the company placed (a practice) or makes (a lab), newest
    first, and the total.

    A company takes one side only: placing an order checks that its practice is a
    practice and its lab a lab, the table forbids both being one company, and a
    company's kind never changes. So the page is read through that side's index,
    newest first, and stops at the page's end. One query for either side (``OR``) read
    and sorted every order of the company for one page: 15 ms of CPU a request for a
    lab with 20,000 orders (bench/request_cpu.py --more-orders).

    Plain rows of the columns a list shows (:class:`OrderSummary` reads them by name),
    not ORM objects: loading each order whole (its prescription, a dozen converted
    decimals) and then building its ORM state was most of the request's CPU (cProfile
    of ``GET /api/orders``, the most frequent request of bench/users.py)."""
    conditions = _conditions(company, filters)
    if company.kind is CompanyKind.PRACTICE:
        conditions.append(Order.company_id == company.id)
    elif company.kind is CompanyKind.LAB:
        conditions.append(Order.lab_id == company.id)
    else:
        return [], 0
    total = await session.scalar(select(func.count()).select_from(Order).where(*conditions))
    rows = await session.execute(
        select(*SUMMARY_COLUMNS)
        .where(*conditions)
        .order_by(Order.created_at.desc(), Order.id)
        .limit(limit)
        .offset(offset)
    )
    return rows.all(), int(total or 0)


async def _notify_side(
    session: AsyncSession, helpers: JobHelpers, order: Order, company_id: str, message: str
) -> None:
    """One notification job for the side's company, not one per user: its worker
    notifies every active user, so a large company costs the queue one job (issue 21)."""
    await helpers.queue_company_order_notification(
        company_id, order.id, order.status.value, message, session=session
    )


async def change_status(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    order_id: str,
    to_status: OrderStatus,
    note: str | None,
    now: datetime,
) -> Order:
    """Move the order and tell the other side's users.

    Raises:
        NotFoundError: an order of neither side (404).
        ForbiddenError: a role that may not make such moves (403).
        InvalidTransitionError: a move the lifecycle does not allow now (409).
    """
    order = await get_scoped(
        session, Order, order_id, user.company_id, owners=ORDER_OWNERS, for_update=True
    )
    side = order.side_of(user.company_id)
    assert side is not None  # get_scoped found it through one of the two sides
    if not may_move(user.role, side, order.status, to_status):
        raise ForbiddenError()
    change = order.change_status(to_status, side, changed_by=user.id, note=note, at=now)
    session.add(change)
    await session.flush()
    other = order.lab_id if side == Side.PRACTICE else order.company_id
    message = f"Order {order.number} is now {status_label(to_status)}"
    await _notify_side(session, helpers, order, other, message)
    return order


async def ship(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    order_id: str,
    tracking_number: str,
    carrier: str | None,
    now: datetime,
) -> Order:
    """Ship the order: ``quality_check`` → ``shipped`` with tracking details.

    Queues the shipment e-mail to the user who placed the order and an order
    notification to the practice's users.

    Raises:
        NotFoundError: an order not made by the user's lab (404).
        InvalidTransitionError: the order is not through quality check (409).
    """
    order = await get_scoped(
        session, Order, order_id, user.company_id, owners=("lab_id",), for_update=True
    )
    change = order.change_status(
        OrderStatus.SHIPPED, Side.LAB, changed_by=user.id, via_ship=True, at=now
    )
    order.tracking_number = tracking_number
    order.carrier = carrier
    session.add(change)
    await session.flush()
    if order.created_by is not None:
        await helpers.queue_shipment_notification_email(
            order.id, order.created_by, tracking_number, carrier, session=session
        )
    via = f" with {carrier}" if carrier else ""
    message = f"Order {order.number} has shipped{via}, tracking {tracking_number}"
    await _notify_side(session, helpers, order, order.company_id, message)
    return order
