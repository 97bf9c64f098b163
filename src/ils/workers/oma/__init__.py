"""The OMA worker: lens-tracing files (Vision Council DCS, "OMA" or "VCA") read,
checked, measured and attached to their order.

* ``records``: the file as records (``LABEL=field;field``), parsed and written back;
  recognised by content, refusing binary data (``.oma`` is also an audio format).
* ``tracing``: the file's datasets (``TRCFMT``, ``ZFMT``, ``STHKFMT``..., each with
  its own ``R=``/``Z=``/``A=`` records) and each eye's tracing (``TRCFMT``); format 1
  decoded, other formats kept raw and reported as errors (no shape).
* ``measure``: boxing A and B, effective diameter, circumference, and the outline the
  lab work ticket draws.
* ``checks``: findings against what the file declares and what the order says;
  ``rx``: the prescription and centration against the order's (BS EN ISO 21987
  tolerances); ``companions``: thickness datasets and drill holes; ``finding``: the
  finding type they share.
* ``handlers``: the ``process-oma-file`` job.
"""

from __future__ import annotations

from typing import Final

from ils.jobs.payloads.pdf import ProcessOmaFile
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_context import WorkerContext
from ils.workers.oma.handlers import OmaWorker

QUEUE: Final = "oma"

__all__ = ["QUEUE", "OmaWorker", "register"]


def register(registry: HandlerRegistry, context: WorkerContext) -> OmaWorker:
    """Register the ``process-oma-file`` handler."""
    worker = OmaWorker(context)
    registry.register(ProcessOmaFile, worker.process_file)
    return worker
