"""Payload models of the ``notification`` queue (Redis queue ``notifications``).

In-app notifications carry the short texts shown to the user (title, message,
summary) and optional links into the app; the links are checked so that a
notification can never point a user at ``javascript:`` or another site by accident.
"""

from __future__ import annotations

from typing import Literal

from ils.jobs.payloads.base import (
    NOTIFICATION_PRIORITIES,
    CompanyName,
    Identifier,
    JobPayload,
    Link,
    Message,
    NotificationPriority,
    ShortText,
    Summary,
    Title,
)

NotificationInsightType = Literal["briefing", "forecast", "anomaly", "recommendation"]
MarketplaceAction = Literal["request", "accepted", "rejected"]


class SystemNotification(JobPayload):
    """A platform message to one user; its ``priority`` also orders the job."""

    type: Literal["system-notification"] = "system-notification"
    user_id: Identifier
    title: Title
    message: Message
    priority: NotificationPriority = "medium"
    action_url: Link | None = None

    def job_priority(self) -> int:
        """An urgent notice must overtake a queue full of routine ones (jobs.md)."""
        return NOTIFICATION_PRIORITIES[self.priority]


class OrderNotification(JobPayload):
    """Tell a user an order changed status.

    ``status`` is the order's status as the platform names it; the catalogue of
    statuses belongs to the order domain, so it is a bounded one-line text here.
    """

    type: Literal["order-notification"] = "order-notification"
    user_id: Identifier
    order_id: Identifier
    status: ShortText
    message: Message


class CompanyOrderNotification(JobPayload):
    """Tell every active user of a company that an order changed status.

    One job per event, not per recipient: the worker resolves the company's active
    users when it runs, so an order event costs one job however large the company
    (issue 21: one job per recipient flooded the rate-limited queue).
    """

    type: Literal["company-order-notification"] = "company-order-notification"
    company_id: Identifier
    order_id: Identifier
    status: ShortText
    message: Message


class AiInsightNotification(JobPayload):
    """Point a user at a new AI insight (briefing, forecast, anomaly, recommendation)."""

    type: Literal["ai-insight-notification"] = "ai-insight-notification"
    user_id: Identifier
    insight_type: NotificationInsightType
    title: Title
    summary: Summary
    detail_url: Link | None = None


class MarketplaceNotification(JobPayload):
    """Tell a user about a marketplace connection request or its answer."""

    type: Literal["marketplace-notification"] = "marketplace-notification"
    user_id: Identifier
    connection_id: Identifier
    action: MarketplaceAction
    company_name: CompanyName


class UrgentNotificationEmail(JobPayload):
    """Check, some minutes after an urgent notification was stored, whether its user
    has read it; if not, send it as an e-mail. Enqueued (delayed) by the notification
    worker itself, with no helper: producers queue the notification, not this."""

    type: Literal["urgent-notification-email"] = "urgent-notification-email"
    notification_id: Identifier
