"""The notification worker: in-app notifications, stored once and delivered live.

* ``content``: who a notification is for (checked against the database) and what it
  says, per job type.
* ``handlers``: store with the job's id (idempotent), signal live streams through the
  job system's event bus, e-mail urgent ones left unread.

Rate limit (200 a minute across processes) and concurrency (10 per process) are the
queue's, enforced by the runner from the catalogue.
"""

from __future__ import annotations

from ils.queue.registry import HandlerRegistry
from ils.queue.system import JobSystem
from ils.workers.notification.handlers import CHANNEL, URGENT_EMAIL_JOB, NotificationWorker

QUEUE = "notification"
JOB_NAMES = (
    "system-notification",
    "order-notification",
    "ai-insight-notification",
    "marketplace-notification",
)

__all__ = ["CHANNEL", "JOB_NAMES", "QUEUE", "NotificationWorker", "register"]


def register(registry: HandlerRegistry, system: JobSystem) -> NotificationWorker:
    """Register the notification handlers and the urgent e-mail check."""
    worker = NotificationWorker(system)
    for name in JOB_NAMES:
        registry.register(QUEUE, name, worker.handler(name))
    registry.register(QUEUE, URGENT_EMAIL_JOB, worker.escalate)
    return worker
