"""The OMA worker: lens-tracing files (Vision Council DCS, "OMA" or "VCA") read,
checked, measured and attached to their order.

* ``records``: the file as records (``LABEL=field;field``), parsed and written back;
  recognised by content, refusing binary data (``.oma`` is also an audio format).
* ``tracing``: each eye's tracing dataset (``TRCFMT`` and its ``R=`` radii); format 1
  decoded, other formats kept raw and reported as unsupported.
* ``measure``: boxing A and B, effective diameter, circumference, and the outline the
  lab work ticket draws.
* ``checks``: findings against what the file declares and what the order says.
* ``handlers``: the ``process-oma-file`` job.
"""

from __future__ import annotations

from typing import Final

from ils.jobs.payloads.pdf import ProcessOmaFile
from ils.jobs.registry import HandlerRegistry
from ils.jobs.system import JobSystem
from ils.workers.oma.handlers import OmaWorker

QUEUE: Final = "oma"

__all__ = ["QUEUE", "OmaWorker", "register"]


def register(registry: HandlerRegistry, system: JobSystem) -> OmaWorker:
    """Register the ``process-oma-file`` handler."""
    worker = OmaWorker(system)
    registry.register(ProcessOmaFile, worker.process_file)
    return worker
