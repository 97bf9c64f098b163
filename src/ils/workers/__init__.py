"""Handlers by queue. Each worker package registers its handlers on a registry.

Every queue of jobs.md has its handlers; a worker process leaves the queues it has no
handlers for (a custom registrar's) to others.
"""

from __future__ import annotations

from ils.queue.registry import HandlerRegistry
from ils.queue.system import JobSystem
from ils.workers import ai, email, notification, oma, pdf, scheduled


def register_all(registry: HandlerRegistry, system: JobSystem) -> None:
    """Register every handler this release has: the ``email``, ``pdf``,
    ``notification``, ``ai``, ``oma`` and ``scheduled`` queues'."""
    email.register(registry, system)
    pdf.register(registry, system)
    notification.register(registry, system)
    ai.register(registry, system)
    oma.register(registry, system)
    scheduled.register(registry, system)
