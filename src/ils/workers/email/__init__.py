"""The e-mail worker: the six job types of the ``email`` queue, sent exactly once.

Modules, one concern each:

* ``content``: load an e-mail's records (ids from the payload) and draft its messages;
  ``drafts`` has the shared pieces (recipients, branding, errors for missing data).
* ``render``: Jinja2 templates under ``templates/``, an HTML and a plain-text part.
* ``compose``: the MIME message and its stable Message-ID.
* ``transport``: the file transport (``.eml`` under ``data_dir/mail``, the default
  without ``ILS_SMTP__HOST``); ``smtp``: SMTP with pooled, reused connections.
* ``log``: the message log (``mail_messages``), which makes a retry skip a message
  the server already accepted.
* ``handlers``: the worker tying them together, and the exactly-once policy.

Rate limit (100 a minute across processes) and concurrency (5 per process) are the
queue's, enforced by the runner from the catalogue.
"""

from __future__ import annotations

from ils.jobs.payloads.email import (
    DailyBriefingEmail,
    GeneralNotificationEmail,
    MarketplaceConnectionEmail,
    OrderConfirmationEmail,
    OrderShipmentEmail,
    PurchaseOrderEmail,
)
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_context import WorkerContext
from ils.workers.email.handlers import EmailWorker
from ils.workers.email.transport import make_transport

QUEUE = "email"

__all__ = ["QUEUE", "EmailWorker", "register"]


def register(registry: HandlerRegistry, context: WorkerContext) -> EmailWorker:
    """Register the six e-mail handlers; returns the worker (closed with the system).

    Nothing connects here: the SMTP pool opens its first connection with the first
    message, so a process that never sends mail never talks to the server.
    """
    settings = context.settings
    transport = make_transport(settings, context.catalogue[QUEUE].concurrency)
    worker = EmailWorker(
        settings,
        context.db,
        transport,
        context.clock,
    )
    context.on_close(worker.close)
    registry.register(OrderConfirmationEmail, worker.order_confirmation)
    registry.register(OrderShipmentEmail, worker.order_shipment)
    registry.register(PurchaseOrderEmail, worker.purchase_order)
    registry.register(MarketplaceConnectionEmail, worker.marketplace_connection)
    registry.register(GeneralNotificationEmail, worker.general_notification)
    registry.register(DailyBriefingEmail, worker.daily_briefing)
    return worker
