"""Handlers by queue. Each worker package registers its handlers on a registry.

The real handlers (e-mail, PDF, notification, AI, OMA, scheduled) arrive one queue at
a time; until a job type has one, its jobs fail at once with a clear reason.
"""

from __future__ import annotations

from ils.queue.registry import HandlerRegistry
from ils.queue.system import JobSystem


def register_all(registry: HandlerRegistry, system: JobSystem) -> None:
    """Register every handler this release has (none yet: see the issues)."""
    del registry, system
