"""The ``pdf`` queue's handlers: one per job type, all through one generator.

A handler validates nothing itself (the payload model did), calls the generator with
the job's id for idempotency and returns what was stored: the job's result then
names the document (id, version, checksum) for the monitoring API. Log lines name
the kind, version and size, never what the document says.

Each handler takes its own payload model and reads the subject's id from that
model's field, so the type checker sees which id each document is rendered for.
"""

from __future__ import annotations

from typing import Any

from ils.jobs.payloads.pdf import (
    ExaminationFormPdf,
    InvoicePdf,
    LabWorkTicketPdf,
    OrderSheetPdf,
    ReceiptPdf,
)
from ils.jobs.registry import JobContext
from ils.workers.pdf.data import DocumentKind
from ils.workers.pdf.generate import DocumentGenerator


class PdfWorker:
    """Serves the five document jobs of one process; owns the render pool."""

    def __init__(self, generator: DocumentGenerator) -> None:
        self.generator = generator

    async def order_sheet(self, payload: OrderSheetPdf, ctx: JobContext) -> dict[str, Any]:
        """Handler of ``order-sheet``."""
        return await self.render(DocumentKind.ORDER_SHEET, payload.order_id, ctx)

    async def invoice(self, payload: InvoicePdf, ctx: JobContext) -> dict[str, Any]:
        """Handler of ``invoice``."""
        return await self.render(DocumentKind.INVOICE, payload.invoice_id, ctx)

    async def receipt(self, payload: ReceiptPdf, ctx: JobContext) -> dict[str, Any]:
        """Handler of ``receipt`` (a receipt is keyed by its invoice)."""
        return await self.render(DocumentKind.RECEIPT, payload.invoice_id, ctx)

    async def lab_work_ticket(self, payload: LabWorkTicketPdf, ctx: JobContext) -> dict[str, Any]:
        """Handler of ``lab-work-ticket``."""
        return await self.render(DocumentKind.LAB_WORK_TICKET, payload.order_id, ctx)

    async def examination_form(
        self, payload: ExaminationFormPdf, ctx: JobContext
    ) -> dict[str, Any]:
        """Handler of ``examination-form``."""
        return await self.render(DocumentKind.EXAMINATION_FORM, payload.examination_id, ctx)

    async def render(self, kind: DocumentKind, subject_id: str, ctx: JobContext) -> dict[str, Any]:
        """Generate (or, on a retry, find) the job's document of ``kind`` about
        ``subject_id``; the result names the stored document."""
        document = await self.generator.generate(kind, subject_id, job_id=ctx.job_id)
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

    def close(self) -> None:
        """Stop the render processes (idempotent)."""
        self.generator.close()
