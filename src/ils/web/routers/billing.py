"""Invoices and payments: labs bill practices for orders.

Who may (docs/platform.md): lab admin, company_admin and staff invoice the orders
their lab makes and record payments on invoices their lab issued; the issuer and the
customer read an invoice (lab_tech, a production role, does not). Anyone else's
invoice answers 404.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends

from ils.domain.billing import Invoice
from ils.domain.companies import CompanyKind, Role, User
from ils.domain.scoping import get_scoped
from ils.web.deps import CurrentCompany, HelpersDep, SessionDep, StateDep, require_roles
from ils.web.schemas.billing import InvoiceCreate, InvoiceOut, PaymentCreate
from ils.web.schemas.common import error_responses
from ils.web.services import billing as service
from ils.web.services.common import now_utc

router = APIRouter(tags=["billing"])

BILLING_ROLES: Final = (Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF)

LabBillingUser = Annotated[User, Depends(require_roles(*BILLING_ROLES, kinds=[CompanyKind.LAB]))]
InvoiceReader = Annotated[User, Depends(require_roles(*BILLING_ROLES))]


@router.post(
    "/api/orders/{order_id}/invoices",
    status_code=201,
    summary="Invoice an order",
    responses=error_responses(401, 403, 404, 409),
)
async def create_invoice(
    order_id: str,
    body: InvoiceCreate,
    user: LabBillingUser,
    company: CurrentCompany,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> InvoiceOut:
    """Invoice the order's practice (one live invoice per order).

    Queues: the invoice PDF.
    """
    invoice = await service.create_invoice(
        session, helpers, company, order_id, body, now_utc(state.clock)
    )
    return InvoiceOut.build(invoice)


@router.get(
    "/api/invoices/{invoice_id}", summary="One invoice", responses=error_responses(401, 403, 404)
)
async def get_invoice(invoice_id: str, user: InvoiceReader, session: SessionDep) -> InvoiceOut:
    """The invoice with its totals per VAT rate, payments and balance."""
    invoice = await get_scoped(
        session, Invoice, invoice_id, user.company_id, owners=("company_id", "customer_id")
    )
    return InvoiceOut.build(invoice)


@router.post(
    "/api/invoices/{invoice_id}/payments",
    status_code=201,
    summary="Record a payment",
    responses=error_responses(401, 403, 404, 409),
)
async def record_payment(
    invoice_id: str,
    body: PaymentCreate,
    user: LabBillingUser,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> InvoiceOut:
    """Record money received (at most the balance); the invoice's status follows.

    Queues: the receipt PDF.
    """
    invoice = await service.record_payment(
        session, helpers, user, invoice_id, body, now_utc(state.clock)
    )
    return InvoiceOut.build(invoice)
