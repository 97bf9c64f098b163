"""Purchase-order use cases: a lab orders from a supplier's catalogue.

The purchase order goes out by e-mail at once, so it is created ``sent`` rather than
``draft``; the e-mail job is queued in the same transaction as the order.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind, User
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.supply import Product, PurchaseOrder, PurchaseOrderLine, PurchaseOrderStatus
from ils.jobs.helpers import JobHelpers
from ils.web.schemas.supply import PurchaseOrderCreate, PurchaseOrderLineOut, PurchaseOrderOut
from ils.web.services.common import field_error, trading_partner


async def create_purchase_order(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    lab: Company,
    body: PurchaseOrderCreate,
    now: datetime,
) -> tuple[PurchaseOrder, dict[str, Product]]:
    """Create the PO at catalogue prices and queue the purchase-order e-mail.

    Returns:
        The purchase order and its products by id (for the response).

    Raises:
        InvalidFieldError: ``supplier_id`` is not an active supplier or has no
            accepted marketplace connection with the lab, or a line's
            product is not in that supplier's catalogue (422 ``lines.N.product_id``).
    """
    supplier = await trading_partner(
        session, lab.id, body.supplier_id, CompanyKind.SUPPLIER, field="supplier_id"
    )
    wanted = [line.product_id for line in body.lines]
    found = await session.scalars(
        select(Product).where(Product.id.in_(wanted), Product.company_id == supplier.id)
    )
    products = {product.id: product for product in found}
    for index, product_id in enumerate(wanted):
        if product_id not in products:
            raise field_error(f"lines.{index}.product_id", "must be a product of the supplier")
    today = lab.local_date(now)
    expected_on = body.expected_on
    if expected_on is None:
        expected_on = today + timedelta(days=max(p.lead_time_days for p in products.values()))
    elif expected_on < today:
        raise field_error("expected_on", "must not be in the past")
    number = await allocate_number(
        session, NumberKind.PURCHASE_ORDER, year=today.year, company_id=lab.id
    )
    po = PurchaseOrder(
        number=number,
        company_id=lab.id,
        supplier_id=supplier.id,
        status=PurchaseOrderStatus.SENT,
        created_by=user.id,
        expected_on=expected_on,
        lines=[
            PurchaseOrderLine(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price_cents=products[line.product_id].unit_price_cents,
            )
            for line in body.lines
        ],
    )
    session.add(po)
    await session.flush()
    await helpers.queue_purchase_order_email(po.id, supplier.id, session=session)
    return po, products


async def products_of(session: AsyncSession, po: PurchaseOrder) -> dict[str, Product]:
    """The products of the PO's lines, by id (one query, not one per line)."""
    ids = [line.product_id for line in po.lines]
    rows = await session.scalars(select(Product).where(Product.id.in_(ids)))
    return {product.id: product for product in rows}


def purchase_order_out(po: PurchaseOrder, products: dict[str, Product]) -> PurchaseOrderOut:
    """The response for ``po``, lines by SKU (the table keeps no line order, and a
    stable order lets lab and supplier read the same list)."""
    lines = sorted(po.lines, key=lambda line: (products[line.product_id].sku, line.id))
    return PurchaseOrderOut.read_from(
        po,
        lines=[
            PurchaseOrderLineOut.read_from(
                line,
                sku=products[line.product_id].sku,
                name=products[line.product_id].name,
                total_cents=line.quantity * line.unit_price_cents,
            )
            for line in lines
        ],
        total_cents=po.total_cents(),
    )
