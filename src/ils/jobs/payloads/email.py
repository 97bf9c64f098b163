"""Payload models of the ``email`` queue (Redis queue ``emails``).

Field names and job names are those of the TypeScript service; see jobs.md. The
e-mail worker loads the order, user or supplier from the database by id, so only the
texts a caller composes itself (subject, content) travel in the payload.
"""

from __future__ import annotations

from typing import Literal

from ils.jobs.payloads.base import Content, Identifier, IsoDate, JobPayload, ShortText, Subject


class OrderConfirmationEmail(JobPayload):
    """Tell the ordering user that the lab received their order."""

    type: Literal["order-confirmation"] = "order-confirmation"
    order_id: Identifier
    user_id: Identifier


class OrderShipmentEmail(JobPayload):
    """Tell the ordering user the order left the lab, with its tracking number."""

    type: Literal["order-shipment"] = "order-shipment"
    order_id: Identifier
    user_id: Identifier
    tracking_number: ShortText
    carrier: ShortText | None = None


class PurchaseOrderEmail(JobPayload):
    """Send a purchase order to its supplier."""

    type: Literal["purchase-order"] = "purchase-order"
    po_id: Identifier
    supplier_id: Identifier


class MarketplaceConnectionEmail(JobPayload):
    """Ask a company (by e-mail) to accept a marketplace connection request."""

    type: Literal["marketplace-connection"] = "marketplace-connection"
    connection_id: Identifier
    requester_company_id: Identifier
    target_company_id: Identifier


class GeneralNotificationEmail(JobPayload):
    """A free-form e-mail to one user; subject and content are composed by the caller."""

    type: Literal["general-notification"] = "general-notification"
    user_id: Identifier
    subject: Subject
    content: Content


class DailyBriefingEmail(JobPayload):
    """Mail a user the AI daily briefing already generated for their company and date."""

    type: Literal["daily-briefing"] = "daily-briefing"
    user_id: Identifier
    company_id: Identifier
    date: IsoDate
