"""The ``pdf`` queue's handlers: one per job name, all through one generator.

A handler validates nothing itself (the payload model did), calls the generator with
the job's id for idempotency and returns what was stored: the job's result then
names the document (id, version, checksum) for the monitoring API. Log lines name
the kind, version and size, never what the document says.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from ils.queue.registry import Handler, JobContext
from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.generate import DocumentGenerator

#: Job name → (document kind, payload field with the subject's id).
JOBS: Final[dict[str, tuple[DocumentKind, str]]] = {
    "order-sheet": (DocumentKind.ORDER_SHEET, "order_id"),
    "invoice": (DocumentKind.INVOICE, "invoice_id"),
    "receipt": (DocumentKind.RECEIPT, "invoice_id"),
    "lab-work-ticket": (DocumentKind.LAB_WORK_TICKET, "order_id"),
    "examination-form": (DocumentKind.EXAMINATION_FORM, "examination_id"),
}


class PdfWorker:
    """Serves the five document jobs of one process; owns the render pool."""

    def __init__(self, generator: DocumentGenerator) -> None:
        self.generator = generator

    def handler(self, name: str) -> Handler:
        """The handler of job ``name`` for the registry."""
        kind, field = JOBS[name]

        async def handle(payload: BaseModel, ctx: JobContext) -> dict[str, Any]:
            document = await self.generator.generate(
                kind, getattr(payload, field), job_id=ctx.job_id
            )
            await ctx.log(
                f"stored {document.kind} version {document.version} "
                f"({document.size_bytes} bytes) as document {document.id}"
            )
            return {
                "documentId": document.id,
                "kind": document.kind,
                "version": document.version,
                "sha256": document.sha256,
                "sizeBytes": document.size_bytes,
            }

        handle.__name__ = f"render_{name.replace('-', '_')}_pdf"
        return handle

    def close(self) -> None:
        """Stop the render processes (idempotent)."""
        self.generator.close()
