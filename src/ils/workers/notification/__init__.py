"""The notification worker: in-app notifications, stored once and delivered live.

* ``content``: who a notification is for (checked against the database) and what it
  says, per job type.
* ``handlers``: store with the job's id (idempotent), signal live streams through the
  job system's event bus, e-mail urgent ones left unread.

Rate limit (6,000 a minute across processes) and concurrency (10 per process) are the
queue's, enforced by the runner from the catalogue.
"""

from __future__ import annotations

from ils.jobs.payloads.notification import (
    AiInsightNotification,
    CompanyOrderNotification,
    MarketplaceNotification,
    OrderNotification,
    SystemNotification,
    UrgentNotificationEmail,
)
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_context import WorkerContext
from ils.workers.notification.handlers import CHANNEL, NotificationWorker

QUEUE = "notification"

__all__ = ["CHANNEL", "QUEUE", "NotificationWorker", "register"]


def register(registry: HandlerRegistry, context: WorkerContext) -> NotificationWorker:
    """Register the notification handlers and the urgent e-mail check."""
    worker = NotificationWorker(context)
    registry.register(SystemNotification, worker.system_notification)
    registry.register(OrderNotification, worker.order_notification)
    registry.register(CompanyOrderNotification, worker.company_order_notification)
    registry.register(AiInsightNotification, worker.ai_insight_notification)
    registry.register(MarketplaceNotification, worker.marketplace_notification)
    registry.register(UrgentNotificationEmail, worker.escalate)
    return worker
