"""Handlers by queue. Each worker package registers its handlers on a registry.

The real handlers arrive one queue at a time (e-mail and PDF so far); until a job type has
one, its jobs fail at once with a clear reason.
"""

from __future__ import annotations

from ils.queue.registry import HandlerRegistry
from ils.queue.system import JobSystem
from ils.workers import email, pdf


def register_all(registry: HandlerRegistry, system: JobSystem) -> None:
    """Register every handler this release has: the ``email`` and ``pdf`` queues'."""
    email.register(registry, system)
    pdf.register(registry, system)
