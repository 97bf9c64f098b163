"""Handlers by queue. Each worker package registers its handlers on a registry.

Every queue of jobs.md has its handlers; a worker process leaves the queues it has no
handlers for (a custom registrar's) to others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ils.jobs.registry import HandlerRegistry
    from ils.jobs.worker_context import WorkerContext


def register_all(registry: HandlerRegistry, context: WorkerContext) -> None:
    """Register every handler this release has: the ``email``, ``pdf``,
    ``notification``, ``ai``, ``oma`` and ``scheduled`` queues'.

    The worker packages are imported here, not at the top: importing ``ils.workers``
    (the web server does, for this function) must not load every worker's numerical
    and PDF libraries (seconds of start-up) when no worker runs in the process.
    """
    from ils.workers import ai, email, notification, oma, pdf, scheduled

    email.register(registry, context)
    pdf.register(registry, context)
    notification.register(registry, context)
    ai.register(registry, context)
    oma.register(registry, context)
    scheduled.register(registry, context)
