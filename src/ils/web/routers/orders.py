"""Lens orders (``/api/orders``): placed by practices, made and shipped by labs.

Who may (docs/platform.md): practice admin, company_admin and staff place orders;
every user of the order's practice or lab reads it; status moves follow the lifecycle
(practices cancel their own submitted orders, labs make the other moves, lab_tech only
production steps); lab admin, company_admin and lab_tech ship. Another company's order
answers 404.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query

from ils.domain.companies import CompanyKind, Role, User
from ils.domain.orders import Order, OrderStatus
from ils.domain.scoping import get_scoped
from ils.web.deps import (
    CurrentCompany,
    HelpersDep,
    PagingDep,
    SessionDep,
    StateDep,
    require_roles,
)
from ils.web.schemas.common import Day, Page, RecordId, error_responses
from ils.web.schemas.orders import OrderCreate, OrderOut, OrderSummary, ShipIn, StatusChangeIn
from ils.web.services import orders as service
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/orders", tags=["orders"])

ORDER_SIDES: Final = (CompanyKind.PRACTICE, CompanyKind.LAB)

OrderingUser = Annotated[
    User,
    Depends(
        require_roles(Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF, kinds=[CompanyKind.PRACTICE])
    ),
]
OrderSideUser = Annotated[User, Depends(require_roles(kinds=ORDER_SIDES))]
ShippingUser = Annotated[
    User,
    Depends(require_roles(Role.ADMIN, Role.COMPANY_ADMIN, Role.LAB_TECH, kinds=[CompanyKind.LAB])),
]


@router.post("", status_code=201, summary="Place an order", responses=error_responses(401, 403))
async def create_order(
    body: OrderCreate,
    user: OrderingUser,
    company: CurrentCompany,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> OrderOut:
    """Order lenses for one of the practice's patients from an active lab.

    Queues: order-confirmation e-mail (to you), order-sheet and lab-work-ticket PDFs,
    an order notification to each active user of the lab.
    """
    order, submitted = await service.create_order(
        session, helpers, user, company, body, now_utc(state.clock), state.numbering
    )
    return await service.order_out(session, order, user, [submitted])


@router.get("", summary="List orders", responses=error_responses(401, 403))
async def list_orders(
    user: OrderSideUser,
    company: CurrentCompany,
    session: SessionDep,
    paging: PagingDep,
    status: OrderStatus | None = None,
    patient_id: RecordId | None = None,
    created_from: Annotated[
        Day | None, Query(description="First day, in your company's time zone.")
    ] = None,
    created_to: Annotated[
        Day | None, Query(description="Last day (inclusive), in your company's time zone.")
    ] = None,
) -> Page[OrderSummary]:
    """Orders your practice placed or your lab makes, newest first."""
    filters = service.OrderFilters(status, patient_id, created_from, created_to)
    rows, total = await service.list_orders(session, company, filters, paging.limit, paging.offset)
    return paging.page(rows, total, OrderSummary.read_from)


@router.get("/{order_id}", summary="One order", responses=error_responses(401, 403, 404))
async def get_order(order_id: str, user: OrderSideUser, session: SessionDep) -> OrderOut:
    """The order with its prescription, status history and the moves open to you."""
    order = await get_scoped(session, Order, order_id, user.company_id, owners=service.ORDER_OWNERS)
    return await service.order_out(session, order, user)


@router.post(
    "/{order_id}/status",
    summary="Change an order's status",
    responses=error_responses(401, 403, 404, 409),
)
async def change_status(
    order_id: str,
    body: StatusChangeIn,
    user: OrderSideUser,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> OrderOut:
    """Move the order along its lifecycle (403 for your role, 409 for the lifecycle).

    Queues: an order notification to each active user of the other side.
    """
    order = await service.change_status(
        session, helpers, user, order_id, body.status, body.note, now_utc(state.clock)
    )
    return await service.order_out(session, order, user)


@router.post(
    "/{order_id}/ship", summary="Ship an order", responses=error_responses(401, 403, 404, 409)
)
async def ship_order(
    order_id: str,
    body: ShipIn,
    user: ShippingUser,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> OrderOut:
    """Mark a quality-checked order shipped with its tracking number.

    Queues: order-shipment e-mail to the user who placed the order, an order
    notification to each active user of the practice.
    """
    order = await service.ship(
        session,
        helpers,
        user,
        order_id,
        body.tracking_number,
        body.carrier,
        now_utc(state.clock),
    )
    return await service.order_out(session, order, user)
