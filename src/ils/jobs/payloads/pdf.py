"""Payload models of the ``pdf`` queue (Redis queue ``pdfs``) and the ``oma`` queue.

A document job names the record to render; the worker reads the record itself, so
the payload is a single identifier. The OMA job lives here too: like a document job
it names a file and the order it belongs to, and a module of its own for one model
would be noise.
"""

from __future__ import annotations

from typing import Literal

from ils.jobs.payloads.base import Identifier, JobPayload


class OrderSheetPdf(JobPayload):
    """Render the order sheet of an order."""

    type: Literal["order-sheet"] = "order-sheet"
    order_id: Identifier


class InvoicePdf(JobPayload):
    """Render an invoice."""

    type: Literal["invoice"] = "invoice"
    invoice_id: Identifier


class ReceiptPdf(JobPayload):
    """Render the receipt of a paid invoice (hence keyed by invoice)."""

    type: Literal["receipt"] = "receipt"
    invoice_id: Identifier


class LabWorkTicketPdf(JobPayload):
    """Render the work ticket that travels with an order through the lab."""

    type: Literal["lab-work-ticket"] = "lab-work-ticket"
    order_id: Identifier


class ExaminationFormPdf(JobPayload):
    """Render an examination form; the clinical data stays in the database."""

    type: Literal["examination-form"] = "examination-form"
    examination_id: Identifier


class ProcessOmaFile(JobPayload):
    """Parse, validate and measure an uploaded OMA/VCA tracing file of an order."""

    type: Literal["process-oma-file"] = "process-oma-file"
    order_id: Identifier
    file_id: Identifier
