"""Invoice use cases: invoice an order, record a payment.

The invoice row, its lines, its number and its PDF job are one transaction; so are a
payment, the invoice status it leads to and the receipt job. The invoice row is locked
while a payment is recorded, so two payments arriving at once cannot both fit into the
same balance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.billing import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    status_after_payments,
)
from ils.domain.companies import Company, User
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.orders import Order, OrderStatus
from ils.domain.scoping import get_scoped
from ils.errors import ConflictError
from ils.jobs.helpers import JobHelpers
from ils.web.schemas.billing import InvoiceCreate, PaymentCreate
from ils.web.services.common import field_error


async def create_invoice(
    session: AsyncSession,
    helpers: JobHelpers,
    lab: Company,
    order_id: str,
    body: InvoiceCreate,
    now: datetime,
) -> Invoice:
    """Invoice the practice of an order the lab makes, and queue the invoice PDF.

    One live invoice per order: a second answers 409 until the first is void, so an
    order cannot be billed twice by a double click.

    Raises:
        NotFoundError: an order the lab does not make (404).
        ConflictError: a cancelled or already invoiced order (409).
    """
    order = await get_scoped(session, Order, order_id, lab.id, owners=("lab_id",), for_update=True)
    if order.status == OrderStatus.CANCELLED:
        raise ConflictError("a cancelled order is not invoiced")
    existing = await session.scalar(
        select(Invoice.id).where(Invoice.order_id == order.id, Invoice.status != InvoiceStatus.VOID)
    )
    if existing is not None:
        raise ConflictError("the order is already invoiced")
    issued_on = body.issued_on or lab.local_date(now)
    number = await allocate_number(
        session, NumberKind.INVOICE, year=issued_on.year, company_id=lab.id
    )
    invoice = Invoice(
        number=number,
        company_id=lab.id,
        customer_id=order.company_id,
        order_id=order.id,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=body.payment_terms_days),
        currency=body.currency,
        payment_terms_days=body.payment_terms_days,
        lines=[
            InvoiceLine(
                position=position,
                description=line.description,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                vat_treatment=line.vat_treatment,
                vat_rate_bp=line.vat_rate_bp,
            )
            for position, line in enumerate(body.lines, start=1)
        ],
        payments=[],
    )
    # An all-free invoice (warranty remake) is settled from the start.
    invoice.status = status_after_payments(invoice.totals().gross_cents, 0)
    session.add(invoice)
    await session.flush()
    await helpers.queue_invoice_pdf(invoice.id, session=session)
    return invoice


async def record_payment(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    invoice_id: str,
    body: PaymentCreate,
    now: datetime,
) -> Invoice:
    """Record money received, update the invoice's status, queue the receipt PDF.

    Raises:
        NotFoundError: an invoice the user's company did not issue (404).
        ConflictError: a void or fully paid invoice (409).
        InvalidFieldError: an amount above the balance due (422 ``amount_cents``).
    """
    invoice = await get_scoped(session, Invoice, invoice_id, user.company_id, for_update=True)
    if invoice.status == InvoiceStatus.VOID:
        raise ConflictError("the invoice is void")
    gross = invoice.totals().gross_cents
    balance = invoice.balance_cents()
    if balance <= 0:
        raise ConflictError("the invoice is paid")
    if body.amount_cents > balance:
        raise field_error("amount_cents", "must not exceed the balance due")
    payment = Payment(
        invoice=invoice,
        company_id=invoice.company_id,
        amount_cents=body.amount_cents,
        method=body.method,
        # UTC, as the row reads back: the response must not depend on a reload.
        received_at=(body.received_at or now).astimezone(UTC),
        reference=body.reference,
    )
    session.add(payment)
    invoice.status = status_after_payments(gross, invoice.paid_cents())
    await session.flush()
    await helpers.queue_receipt_pdf(invoice.id, session=session)
    return invoice
