"""One entry point for every document: what the render processes call.

:func:`render_document` is a module-level function of plain arguments, so a
``ProcessPoolExecutor`` can pickle the call; the data classes travel by value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ils.workers.pdf.billing import render_invoice, render_receipt
from ils.workers.pdf.data import (
    DocumentData,
    DocumentKind,
    DocumentMeta,
    ExaminationData,
    InvoiceData,
    LabTicketData,
    Letterhead,
    OrderSheetData,
    ReceiptData,
)
from ils.workers.pdf.examination import render_examination_form
from ils.workers.pdf.layout import Sheet
from ils.workers.pdf.order_sheet import render_order_sheet
from ils.workers.pdf.ticket import render_lab_ticket

#: The data class and drawing function of each kind.
RENDERERS: dict[DocumentKind, tuple[type[Any], Callable[[Any], bytes]]] = {
    DocumentKind.ORDER_SHEET: (OrderSheetData, render_order_sheet),
    DocumentKind.LAB_WORK_TICKET: (LabTicketData, render_lab_ticket),
    DocumentKind.INVOICE: (InvoiceData, render_invoice),
    DocumentKind.RECEIPT: (ReceiptData, render_receipt),
    DocumentKind.EXAMINATION_FORM: (ExaminationData, render_examination_form),
}


def render_document(kind: str, data: DocumentData) -> bytes:
    """The PDF of ``data`` as document ``kind``.

    Raises:
        TypeError: ``data`` is not the data class of ``kind`` (a programming error).
    """
    data_class, draw = RENDERERS[DocumentKind(kind)]
    if not isinstance(data, data_class):
        raise TypeError(f"{kind} takes {data_class.__name__}, not {type(data).__name__}")
    return draw(data)


def warm_up() -> None:
    """Import and exercise reportlab once, so a new process's first job is not slow."""
    Sheet(Letterhead(name="warm-up"), "warm-up", "-", DocumentMeta()).finish()
