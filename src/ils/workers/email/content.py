"""The six e-mails of the ``email`` queue: load their records, return drafts.

What each message tells and to whom (jobs.md; payloads carry ids only):

* ``order-confirmation``: the lab has the order. To the user who placed it, from the
  lab: number, status, items, prescription, due date, price.
* ``order-shipment``: the order left the lab. As above, with the carrier, tracking
  number and a link to the carrier's tracking page.
* ``purchase-order``: a lab orders from a supplier. To the supplier (its address,
  else each of its admins), from the lab: lines, total, delivery address.
* ``marketplace-connection``: a company asks another to connect. To the company
  asked, from the one asking, with its message.
* ``general-notification``: a caller's subject and text to one user, with the
  user's company branding.
* ``daily-briefing``: the AI briefing already stored for the company and day.

Patients: an order e-mail to the practice shows the practice's own patient
reference and nothing else about the patient (no name, no date of birth); to anyone
else not even that. Suppliers and companies asked to connect get no patient data at
all. The prescription is what the lab works from and the practice wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Final, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.clinical import Patient
from ils.domain.companies import Company, User
from ils.domain.content import AIResult, AIResultKind
from ils.domain.lens_options import label as lens_label
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.orders import Order
from ils.domain.supply import Product, PurchaseOrder, PurchaseOrderStatus
from ils.errors import MailDataMissingError
from ils.jobs.payloads.email import (
    DailyBriefingEmail,
    GeneralNotificationEmail,
    MarketplaceConnectionEmail,
    OrderConfirmationEmail,
    OrderShipmentEmail,
    PurchaseOrderEmail,
)
from ils.workers.email.drafts import (
    Brand,
    MailDraft,
    Skip,
    company,
    company_recipients,
    drafts_for,
    user_recipient,
)
from ils.workers.email.links import PlatformLinks, tracking_url
from ils.workers.email.render import dioptres, label, millimetres, money

#: Orders and purchase orders carry no currency; the platform invoices in pounds.
CURRENCY: Final = "GBP"
#: Items of a briefing list shown at most (an AI may return long lists).
BRIEFING_LIST_MAX: Final = 20

Built = list[MailDraft] | Skip

#: The payload of any e-mail job: what the worker reads besides its builder's fields
#: (``type``, the job name, which is part of each message's stable key).
EmailJob = (
    OrderConfirmationEmail
    | OrderShipmentEmail
    | PurchaseOrderEmail
    | MarketplaceConnectionEmail
    | GeneralNotificationEmail
    | DailyBriefingEmail
)
EmailJobT = TypeVar("EmailJobT", bound=EmailJob)

#: Drafts the messages of one e-mail job type from its payload (a ContentBuilder
#: method); the handler of that type passes its own, so each gets its own payload.
Builder = Callable[[AsyncSession, EmailJobT], Awaitable[Built]]


def _rx_eye(order: Order, side: str, name: str) -> dict[str, str] | None:
    sphere = getattr(order, f"{side}_sphere")
    cylinder = getattr(order, f"{side}_cylinder")
    axis = getattr(order, f"{side}_axis")
    add = getattr(order, f"{side}_add")
    prism = getattr(order, f"{side}_prism")
    vertical = getattr(order, f"{side}_prism_vertical")
    if all(value is None for value in (sphere, cylinder, axis, add, prism, vertical)):
        return None
    components = (
        (prism, getattr(order, f"{side}_prism_base")),
        (vertical, getattr(order, f"{side}_prism_vertical_base")),
    )
    prism_text = ", ".join(
        f"{amount:.2f}Δ base {base.value if base is not None else '?'}"
        for amount, base in components
        if amount
    )
    return {
        "label": name,
        "sphere": dioptres(sphere),
        "cylinder": dioptres(cylinder),
        "axis": "" if axis is None else f"{axis}°",
        "add": dioptres(add),
        "prism": prism_text,
    }


def _pair(what: str, right: Any, left: Any) -> str | None:
    if right is None and left is None:
        return None
    return f"{what}: R {millimetres(right) or '-'} / L {millimetres(left) or '-'} mm"


def prescription(order: Order) -> dict[str, Any]:
    """The prescription as the e-mails show it: per eye, then PD and heights."""
    eyes = [eye for eye in (_rx_eye(order, "right", "R"), _rx_eye(order, "left", "L")) if eye]
    measurements = []
    if order.pd_binocular is not None:
        measurements.append(f"PD: {millimetres(order.pd_binocular)} mm")
    measurements += [
        line
        for line in (
            _pair("Monocular PD", order.pd_right, order.pd_left),
            _pair("Seg height", order.seg_height_right, order.seg_height_left),
        )
        if line
    ]
    return {"eyes": eyes, "measurements": measurements}


def order_items(order: Order) -> list[str]:
    """The lenses (and frame) of an order, one line each."""
    lens = " ".join(
        part
        for part in (
            label(order.lens_design),
            None if order.lens_material is None else lens_label(order.lens_material),
            None if order.lens_index is None else f"index {order.lens_index}",
            "lenses, pair",
        )
        if part
    )
    items = [lens]
    if order.coatings:
        items.append("Coatings: " + ", ".join(lens_label(code) for code in order.coatings))
    if order.tint:
        items.append(f"Tint: {lens_label(order.tint)}")
    frame = " ".join(part for part in (order.frame_brand, order.frame_model) if part)
    if frame or order.frame_colour:
        colour = f" ({order.frame_colour})" if order.frame_colour else ""
        sizes = [
            f"{what} {millimetres(value)}"
            for what, value in (
                ("A", order.frame_box_a),
                ("B", order.frame_box_b),
                ("DBL", order.frame_dbl),
            )
            if value is not None
        ]
        size = f", {' '.join(sizes)} mm" if sizes else ""
        items.append(f"Frame: {frame or 'frame'}{colour}{size}")
    return items


class ContentBuilder:
    """Loads the records of each e-mail job and drafts its messages: one method per
    job type, each taking that type's payload (a :data:`Builder`)."""

    def __init__(self, links: PlatformLinks) -> None:
        self.links = links

    # -- orders ------------------------------------------------------------------------

    async def _order_draft(
        self, session: AsyncSession, order_id: str, user_id: str
    ) -> tuple[Order, Company, User, MailDraft]:
        """The order, its lab, the user and a draft without subject or template."""
        order = await session.get(Order, order_id)
        if order is None:
            raise MailDataMissingError(f"order {order_id} not found")
        user, recipient = await user_recipient(session, user_id)
        if user.company_id not in (order.company_id, order.lab_id):
            raise MailDataMissingError(
                f"user {user_id} is not of the practice or lab of order {order_id}"
            )
        lab = await company(session, order.lab_id, "lab")
        practice = await company(session, order.company_id, "practice")
        reference = None
        if user.company_id == order.company_id:
            reference = await session.scalar(
                select(Patient.reference).where(Patient.id == order.patient_id)
            )
        context = {
            "order": {
                "number": order.number,
                "status": order.status,
                "practice": practice.name,
                "lab": lab.name,
                "patient_reference": reference,
                "created": order.created_at,
                "due_date": order.due_date,
                "price": money(order.price_cents),
                "currency": CURRENCY,
                "line_items": order_items(order),
                "rx": prescription(order),
            },
            "links": {"order": self.links.order(order.id), "home": self.links.home},
        }
        draft = MailDraft(recipient, lab.id, Brand.of(lab), "", "", context)
        return order, lab, user, draft

    async def order_confirmation(
        self, session: AsyncSession, payload: OrderConfirmationEmail
    ) -> Built:
        order, lab, _, draft = await self._order_draft(session, payload.order_id, payload.user_id)
        subject = f"Order {order.number} received by {lab.name}"
        return [_with(draft, subject, "order_confirmation")]

    async def order_shipment(self, session: AsyncSession, payload: OrderShipmentEmail) -> Built:
        order, lab, _, draft = await self._order_draft(session, payload.order_id, payload.user_id)
        carrier = payload.carrier or order.carrier
        draft.context["shipment"] = {
            "carrier": carrier,
            "tracking_number": payload.tracking_number,
            "tracking_url": tracking_url(carrier, payload.tracking_number),
        }
        subject = f"Order {order.number} has shipped from {lab.name}"
        return [_with(draft, subject, "order_shipment")]

    # -- purchasing --------------------------------------------------------------------

    async def purchase_order(self, session: AsyncSession, payload: PurchaseOrderEmail) -> Built:
        po = await session.get(PurchaseOrder, payload.po_id)
        if po is None:
            raise MailDataMissingError(f"purchase order {payload.po_id} not found")
        if po.supplier_id != payload.supplier_id:
            raise MailDataMissingError(
                f"purchase order {po.id} is not addressed to supplier {payload.supplier_id}"
            )
        if po.status == PurchaseOrderStatus.CANCELLED:
            return Skip(f"purchase order {po.id} was cancelled before it was mailed")
        lab = await company(session, po.company_id, "lab")
        supplier = await company(session, po.supplier_id, "supplier")
        products = {
            product.id: product
            for product in await session.scalars(
                select(Product).where(Product.id.in_([line.product_id for line in po.lines]))
            )
        }
        lines = [
            {
                "sku": products[line.product_id].sku if line.product_id in products else "",
                "name": products[line.product_id].name if line.product_id in products else "",
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "total_cents": line.quantity * line.unit_price_cents,
            }
            for line in po.lines
        ]
        brand = Brand.of(lab)
        context = {
            "po": {
                "number": po.number,
                "status": po.status,
                "buyer": lab.name,
                "created": po.created_at,
                "expected_on": po.expected_on,
                "lines": lines,
                "total_cents": po.total_cents(),
                "currency": CURRENCY,
                "deliver_to": brand.address,
            },
            "links": {"purchase_order": self.links.purchase_order(po.id), "home": self.links.home},
        }
        subject = f"Purchase order {po.number} from {lab.name}"
        recipients = await company_recipients(session, supplier)
        return drafts_for(lab, recipients, subject, "purchase_order", context)

    # -- marketplace -------------------------------------------------------------------

    async def marketplace_connection(
        self, session: AsyncSession, payload: MarketplaceConnectionEmail
    ) -> Built:
        connection = await session.get(Connection, payload.connection_id)
        if connection is None:
            raise MailDataMissingError(f"connection {payload.connection_id} not found")
        if (connection.requester_id, connection.target_id) != (
            payload.requester_company_id,
            payload.target_company_id,
        ):
            raise MailDataMissingError(f"connection {connection.id} is not between those companies")
        if connection.status != ConnectionStatus.PENDING:
            return Skip(f"connection {connection.id} was {connection.status.value} already")
        requester = await company(session, connection.requester_id, "requesting company")
        target = await company(session, connection.target_id, "company asked")
        place = ", ".join(part for part in (requester.city, requester.country) if part)
        context = {
            "requester": {"name": requester.name, "kind": requester.kind, "place": place},
            "target_name": target.name,
            "message": connection.message,
            "links": {"connections": self.links.connections, "home": self.links.home},
        }
        subject = f"{requester.name} would like to connect with {target.name}"
        recipients = await company_recipients(session, target)
        return drafts_for(requester, recipients, subject, "marketplace_connection", context)

    # -- to one user -------------------------------------------------------------------

    async def general_notification(
        self, session: AsyncSession, payload: GeneralNotificationEmail
    ) -> Built:
        user, recipient = await user_recipient(session, payload.user_id)
        own = await company(session, user.company_id, "company")
        context = {"content": payload.content, "links": {"home": self.links.home}}
        return drafts_for(own, [recipient], payload.subject, "general_notification", context)

    async def daily_briefing(self, session: AsyncSession, payload: DailyBriefingEmail) -> Built:
        user, recipient = await user_recipient(session, payload.user_id)
        if user.company_id != payload.company_id:
            raise MailDataMissingError(f"user {user.id} is not of company {payload.company_id}")
        own = await company(session, payload.company_id, "company")
        day = date.fromisoformat(payload.date)
        result = await session.scalar(
            select(AIResult)
            .where(
                AIResult.company_id == own.id,
                AIResult.kind == AIResultKind.BRIEFING,
                AIResult.day == day,
            )
            .order_by(AIResult.created_at.desc())
            .limit(1)
        )
        if result is None:
            raise MailDataMissingError(f"no daily briefing of company {own.id} for {day}")
        context = {
            "briefing": {"day": day, **briefing_sections(result.payload)},
            "links": {"home": self.links.home},
        }
        subject = f"Daily briefing for {own.name}, {day.day} {day:%b %Y}"
        return drafts_for(own, [recipient], subject, "daily_briefing", context)


def _with(draft: MailDraft, subject: str, template: str) -> MailDraft:
    return dataclasses.replace(draft, subject=subject, template=template)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value[:BRIEFING_LIST_MAX] if isinstance(item, str | int)]
    return []


def briefing_sections(payload: Any) -> dict[str, Any]:
    """The parts of a stored AI briefing the e-mail shows, read defensively.

    The AI worker stores ``summary`` (text), ``highlights`` and ``recommendations``
    (lists of texts) and ``metrics`` (an object of name → number or text, or a list of
    ``{"label", "value"}``). Anything else is ignored rather than failing the e-mail:
    the briefing comes from a model, and its shape may drift.
    """
    data = payload if isinstance(payload, dict) else {}
    metrics_in = data.get("metrics")
    metrics: list[tuple[str, str]] = []
    if isinstance(metrics_in, dict):
        metrics = [(label(key), str(value)) for key, value in metrics_in.items()]
    elif isinstance(metrics_in, list):
        metrics = [
            (str(item["label"]), str(item["value"]))
            for item in metrics_in
            if isinstance(item, dict) and "label" in item and "value" in item
        ]
    summary = data.get("summary")
    return {
        "summary": summary if isinstance(summary, str) else None,
        "metrics": metrics[:BRIEFING_LIST_MAX],
        "highlights": _texts(data.get("highlights")),
        "recommendations": _texts(data.get("recommendations")),
    }
