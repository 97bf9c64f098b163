"""The PDF worker: order sheets, lab work tickets, invoices, receipts, examination forms.

Modules, one concern each:

* ``data``: what each document prints, as plain picklable values; ``load`` reads the
  records (by the id the job carries) into them and refuses missing or inconsistent
  data (:class:`~ils.workers.pdf.errors.DocumentDataError`, permanent).
* ``layout`` (letterhead, footer with "Page n of m", tables, checklists), ``fmt``
  (how values print), and one module per document: ``ticket`` (with ``shape``, the
  frame outline, and ``prescription``), ``order_sheet``, ``billing`` (invoice and
  receipt), ``examination``; ``render`` dispatches by kind.
* ``pool``: rendering in a process pool, off the event loop.
* files are stored by key through :mod:`ils.storage` (local directory
  ``data_dir/documents`` for now).
* ``generate``: load → render → store → record, versioned and idempotent per job;
  the ``generate_*`` functions for callers outside the queue.
* ``handlers``: the five job handlers, one per payload model.

The render pool belongs to the process's job system: it starts with the first
document and is shut down when the system closes (its engine is disposed), or by
``PdfWorker.close()``.
"""

from __future__ import annotations

import asyncio
import logging

from ils.jobs.payloads.pdf import (
    ExaminationFormPdf,
    InvoicePdf,
    LabWorkTicketPdf,
    OrderSheetPdf,
    ReceiptPdf,
)
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_context import WorkerContext
from ils.workers.pdf.errors import DocumentRenderError
from ils.workers.pdf.generate import (
    DocumentGenerator,
    generate_examination_form,
    generate_invoice,
    generate_lab_work_ticket,
    generate_order_sheet,
    generate_receipt,
)
from ils.workers.pdf.handlers import PdfWorker

QUEUE = "pdf"

__all__ = [
    "QUEUE",
    "DocumentGenerator",
    "PdfWorker",
    "generate_examination_form",
    "generate_invoice",
    "generate_lab_work_ticket",
    "generate_order_sheet",
    "generate_receipt",
    "register",
]


def register(registry: HandlerRegistry, context: WorkerContext) -> PdfWorker:
    """Register the five PDF handlers; returns the worker (its pool stops when the
    system closes). A process that works the pdf queue starts the render pool as it
    starts (a service of the queue), not on its first document; a process that only
    enqueues never starts one."""
    worker = PdfWorker(DocumentGenerator.for_context(context))

    async def close() -> None:
        worker.close()

    async def warm(stop: asyncio.Event) -> None:
        try:
            await worker.generator.renderer.start()
        except DocumentRenderError as exc:  # the first document will try again
            logging.getLogger(__name__).warning("render pool not started: %s", exc)
        await stop.wait()

    context.on_close(close)
    registry.serve_with("pdf", warm)
    registry.register(OrderSheetPdf, worker.order_sheet)
    registry.register(InvoicePdf, worker.invoice)
    registry.register(ReceiptPdf, worker.receipt)
    registry.register(LabWorkTicketPdf, worker.lab_work_ticket)
    registry.register(ExaminationFormPdf, worker.examination_form)
    return worker
