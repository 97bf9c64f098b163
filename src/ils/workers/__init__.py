"""Handlers by queue. Each worker package registers its handlers on a registry.

The real handlers arrive one queue at a time (e-mail, PDF, notifications, AI and
OMA so far); a worker process leaves the queues it has no handlers for to others.
"""

from __future__ import annotations

from ils.queue.registry import HandlerRegistry
from ils.queue.system import JobSystem
from ils.workers import ai, email, notification, oma, pdf


def register_all(registry: HandlerRegistry, system: JobSystem) -> None:
    """Register every handler this release has: the ``email``, ``pdf``,
    ``notification``, ``ai`` and ``oma`` queues'."""
    email.register(registry, system)
    pdf.register(registry, system)
    notification.register(registry, system)
    ai.register(registry, system)
    oma.register(registry, system)
