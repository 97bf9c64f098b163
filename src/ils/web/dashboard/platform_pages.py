"""The pages behind the platform's e-mail links: an order, an invoice, a purchase
order, the marketplace connections.

Why they exist: every e-mail the workers send links back to ``PlatformLinks``
(``ils.workers.email.links``); before these pages those links led to a JSON 404. They
are server-rendered like the dashboard and use its route class, so a signed-out reader
is sent through the sign-in page (``?next=`` brings them back), and another company's
record is the same 404 page as a missing one (``get_scoped``). They read through the
same service functions and read models as the API, so a page never shows more than
the API would give the same user: documents the caller's company owns, without the
examination forms ``lab_tech`` may not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import Base
from ils.domain.billing import Invoice, vat_rate_name
from ils.domain.companies import Role
from ils.domain.company_queries import company_names
from ils.domain.document_queries import subject_documents
from ils.domain.money import format_money
from ils.domain.orders import Order
from ils.domain.scoping import get_scoped
from ils.domain.supply import PurchaseOrder
from ils.domain.tracing_queries import tracing_history
from ils.errors import ForbiddenError
from ils.web.dashboard.pages import Pages
from ils.web.deps import CurrentAuth, SessionDep
from ils.web.routers.billing import BILLING_ROLES
from ils.web.routers.documents import CLINICAL_EXCLUDED_ROLES, CLINICAL_KINDS
from ils.web.routers.purchasing import PURCHASING_ROLES
from ils.web.schemas.billing import InvoiceOut
from ils.web.security import SessionAuth
from ils.web.services import marketplace as marketplace_service
from ils.web.services import orders as order_service
from ils.web.services import purchasing as purchasing_service

RecordT = TypeVar("RecordT", bound=Base)


class PlatformPages:
    """Handlers of ``/orders/{id}``, ``/invoices/{id}``, ``/purchase-orders/{id}`` and
    ``/marketplace/connections`` for any signed-in user of an owning company."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def order(self, order_id: str, auth: CurrentAuth, session: SessionDep) -> HTMLResponse:
        """The order as its practice or lab sees it: status, history, that company's
        documents, and the newest tracing with its findings."""
        user = auth.user
        order = await get_scoped(
            session, Order, order_id, user.company_id, owners=order_service.ORDER_OWNERS
        )
        view = await order_service.order_out(session, order, user)
        documents = [
            row
            for row in await subject_documents(session, user.company_id, order.id)
            if row.kind not in CLINICAL_KINDS or user.role not in CLINICAL_EXCLUDED_ROLES
        ]
        tracings = await tracing_history(session, order.id)
        practice, lab = await _names(session, order.company_id, order.lab_id)
        return self._page(
            "order_page.html",
            auth,
            f"Order {view.number}",
            order=view,
            practice=practice,
            lab=lab,
            documents=documents,
            tracing=tracings[0] if tracings else None,
        )

    async def invoice(
        self, invoice_id: str, auth: CurrentAuth, session: SessionDep
    ) -> HTMLResponse:
        """The invoice as its lab (issuer) or practice (customer) sees it: lines with
        net unit prices and VAT rate names, totals, payments, balance, its PDF. The
        API's billing roles only (a lab_tech reads no prices)."""
        invoice = await _readable(
            session,
            auth,
            Invoice,
            invoice_id,
            BILLING_ROLES,
            ("company_id", "customer_id"),
            "invoices",
        )
        view = InvoiceOut.build(invoice)
        issuer, customer = await _names(session, invoice.company_id, invoice.customer_id)
        order = None if invoice.order_id is None else await session.get(Order, invoice.order_id)
        documents = await subject_documents(session, auth.user.company_id, invoice.id)
        return self._page(
            "invoice_page.html",
            auth,
            f"Invoice {view.number}",
            invoice=view,
            issuer=issuer,
            customer=customer,
            order_number=None if order is None else order.number,
            vat_name=vat_rate_name,
            money=lambda cents: format_money(cents, view.currency),
            documents=documents,
        )

    async def purchase_order(
        self, purchase_order_id: str, auth: CurrentAuth, session: SessionDep
    ) -> HTMLResponse:
        """The purchase order as its lab or its supplier sees it: status and lines.
        The API's purchasing roles only (a lab_tech reads no prices there either)."""
        po = await _readable(
            session,
            auth,
            PurchaseOrder,
            purchase_order_id,
            PURCHASING_ROLES,
            ("company_id", "supplier_id"),
            "purchase orders",
        )
        view = purchasing_service.purchase_order_out(
            po, await purchasing_service.products_of(session, po)
        )
        buyer, supplier = await _names(session, po.company_id, po.supplier_id)
        return self._page(
            "purchase_order_page.html",
            auth,
            f"Purchase order {view.number}",
            po=view,
            buyer=buyer,
            supplier=supplier,
        )

    async def connections(self, auth: CurrentAuth, session: SessionDep) -> HTMLResponse:
        """The company's marketplace connections, both directions, newest first."""
        rows = await marketplace_service.list_connections(session, auth.company, None)
        return self._page("connections_page.html", auth, "Connections", connections=rows)

    def _page(self, template: str, auth: SessionAuth, title: str, **context: Any) -> HTMLResponse:
        """One of these pages: they belong to none of the dashboard's sections (the
        header highlights none), whoever reads them."""
        return self.pages.render(template, auth=auth, title=title, section="", **context)


async def _names(session: AsyncSession, *company_ids: str) -> list[str]:
    """The companies' names in the order given, ``—`` for one not found, so a page
    names both parties of a record in one query and never fails on a missing name."""
    names = await company_names(session, company_ids)
    return [names.get(company_id, "—") for company_id in company_ids]


async def _readable(
    session: AsyncSession,
    auth: SessionAuth,
    model: type[RecordT],
    record_id: str,
    roles: Iterable[Role],
    owners: Sequence[str],
    what: str,
) -> RecordT:
    """The record if the user's role is one of ``roles`` (the API's rule for its
    route) and their company is one of its ``owners``: 403 for the role, for a record
    of other companies the same 404 as for a missing one."""
    if auth.user.role not in (*roles, Role.PLATFORM_ADMIN):
        raise ForbiddenError(f"Your role may not read {what}.")
    return await get_scoped(session, model, record_id, auth.user.company_id, owners=owners)


def add_platform_routes(router: APIRouter, pages: Pages) -> None:
    """Mount the pages on ``router`` (the landing router: outside ``/admin``)."""
    handlers = PlatformPages(pages)
    router.add_api_route(
        "/orders/{order_id}", handlers.order, methods=["GET"], response_class=HTMLResponse
    )
    router.add_api_route(
        "/invoices/{invoice_id}", handlers.invoice, methods=["GET"], response_class=HTMLResponse
    )
    router.add_api_route(
        "/purchase-orders/{purchase_order_id}",
        handlers.purchase_order,
        methods=["GET"],
        response_class=HTMLResponse,
    )
    router.add_api_route(
        "/marketplace/connections",
        handlers.connections,
        methods=["GET"],
        response_class=HTMLResponse,
    )
