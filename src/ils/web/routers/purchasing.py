"""Purchase orders (``/api/purchase-orders``): labs buy from suppliers.

Who may (docs/platform.md): lab admin, company_admin and staff create a purchase
order; the lab and the supplier of a purchase order read it (their admin,
company_admin and staff; lab_tech is a production role). Anyone else's answers 404.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends

from ils.domain.companies import CompanyKind, Role, User
from ils.domain.scoping import get_scoped
from ils.domain.supply import PurchaseOrder
from ils.web.deps import CurrentCompany, HelpersDep, SessionDep, StateDep, require_roles
from ils.web.schemas.common import error_responses
from ils.web.schemas.supply import PurchaseOrderCreate, PurchaseOrderOut
from ils.web.services import purchasing as service
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/purchase-orders", tags=["purchasing"])

PURCHASING_ROLES: Final = (Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF)

Buyer = Annotated[User, Depends(require_roles(*PURCHASING_ROLES, kinds=[CompanyKind.LAB]))]
PurchaseOrderReader = Annotated[
    User,
    Depends(require_roles(*PURCHASING_ROLES, kinds=[CompanyKind.LAB, CompanyKind.SUPPLIER])),
]


@router.post(
    "", status_code=201, summary="Order from a supplier", responses=error_responses(401, 403)
)
async def create_purchase_order(
    body: PurchaseOrderCreate,
    user: Buyer,
    company: CurrentCompany,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> PurchaseOrderOut:
    """Order products of one supplier's catalogue at its prices; the PO is sent at once.

    Queues: the purchase-order e-mail to the supplier.
    """
    po, products = await service.create_purchase_order(
        session, helpers, user, company, body, now_utc(state.clock)
    )
    return service.purchase_order_out(po, products)


@router.get(
    "/{purchase_order_id}", summary="One purchase order", responses=error_responses(401, 403, 404)
)
async def get_purchase_order(
    purchase_order_id: str, user: PurchaseOrderReader, session: SessionDep
) -> PurchaseOrderOut:
    """A purchase order your lab placed or your company supplies."""
    po = await get_scoped(
        session,
        PurchaseOrder,
        purchase_order_id,
        user.company_id,
        owners=("company_id", "supplier_id"),
    )
    return service.purchase_order_out(po, await service.products_of(session, po))
