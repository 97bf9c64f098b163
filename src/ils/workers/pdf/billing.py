"""Invoice and receipt: numbered, dated, VAT per line and per rate, what is left to pay.

The totals come computed (``ils.domain.billing``: VAT rounded once per rate), so what
the PDF prints is what the API answers. Spectacle goods are standard-rated and the
dispensing service exempt; an exempt line says ``Exempt``, not ``0%``, as an invoice
must distinguish exemption from a zero rate. What a UK VAT invoice must show is here:
each rate by its HMRC name (standard 20%, reduced 5%, zero 0%, exempt) with the net,
VAT and gross of its lines; unit prices and line amounts marked as excluding VAT; and
the tax point. ILS raises the invoice when the lab dispatches the goods, so the tax
point is the invoice date (HMRC's 14-day rule): it is printed from ``issued_on``
rather than stored on its own.
"""

from __future__ import annotations

from reportlab.lib.units import mm

from ils.workers.pdf import fmt
from ils.workers.pdf.data import InvoiceData, InvoiceFacts, ReceiptData
from ils.workers.pdf.layout import BOLD, CONFIDENTIAL_RED, Column, Sheet

LINE_COLUMNS = (
    Column("Description", 4.2),
    Column("Qty", 0.6, "right"),
    Column("Unit price (net, excl. VAT)", 1.4, "right"),
    Column("VAT rate", 1.0, "right"),
    Column("Net amount (excl. VAT)", 1.4, "right"),
)
RATE_COLUMNS = (
    Column("VAT rate", 2.0),
    Column("Net", 1.2, "right"),
    Column("VAT", 1.2, "right"),
    Column("Gross", 1.2, "right"),
)


def _parties(sheet: Sheet, invoice: InvoiceFacts) -> None:
    sheet.fields(
        [
            ("Invoice number", invoice.number),
            ("Invoice date", fmt.day(invoice.issued_on)),
            ("Customer", invoice.customer_name),
            ("Tax point", fmt.day(invoice.issued_on)),
            ("Due date", fmt.day(invoice.due_on)),
            ("Customer VAT", invoice.customer_vat_number or fmt.BLANK),
            ("Your order", invoice.order_number or fmt.BLANK),
        ]
    )
    if invoice.customer_address:
        sheet.space(1 * mm)
        sheet.paragraph("Bill to: " + ", ".join([invoice.customer_name, *invoice.customer_address]))


def _vat_analysis(sheet: Sheet, invoice: InvoiceFacts) -> None:
    cur = invoice.currency
    rows = [
        [
            fmt.vat_rate_name(rate.vat_treatment, rate.vat_rate_bp),
            fmt.money(rate.net_cents, cur),
            fmt.money(rate.vat_cents, cur),
            fmt.money(rate.gross_cents, cur),
        ]
        for rate in invoice.rates
    ]
    rows.append(
        [
            "Total",
            fmt.money(invoice.net_cents, cur),
            fmt.money(invoice.vat_cents, cur),
            fmt.money(invoice.gross_cents, cur),
        ]
    )
    sheet.table(RATE_COLUMNS, rows, bold_rows=frozenset({len(rows) - 1}))


def render_invoice(data: InvoiceData) -> bytes:
    """The invoice as PDF bytes."""
    invoice = data.invoice
    cur = invoice.currency
    sheet = Sheet(data.letterhead, "Invoice", invoice.number, data.meta)
    if invoice.status == "void":
        sheet.canvas.setFillColor(CONFIDENTIAL_RED)
        sheet.canvas.setFont(BOLD, 11)
        sheet.canvas.drawString(sheet.left, sheet.y - 4 * mm, "VOID - this invoice was cancelled")
        sheet.y -= 7 * mm
        sheet.canvas.setFillColorRGB(0, 0, 0)
    _parties(sheet, invoice)
    sheet.heading("Lines")
    sheet.table(
        LINE_COLUMNS,
        [
            [
                line.description,
                str(line.quantity),
                fmt.money(line.unit_price_cents, cur),
                fmt.vat_rate(line.vat_treatment, line.vat_rate_bp),
                fmt.money(line.net_cents, cur),
            ]
            for line in invoice.lines
        ],
    )
    sheet.heading("VAT analysis")
    _vat_analysis(sheet, invoice)
    sheet.space(2 * mm)
    summary = [
        ("Total net (excl. VAT)", fmt.money(invoice.net_cents, cur)),
        ("Total VAT", fmt.money(invoice.vat_cents, cur)),
        ("Total due (incl. VAT)", fmt.money(invoice.gross_cents, cur)),
    ]
    if invoice.payments:
        summary.append(("Paid", fmt.money(invoice.paid_cents, cur)))
        summary.append(("Balance due", fmt.money(invoice.balance_cents, cur)))
    sheet.fields(summary, columns=1, label_share=0.7)
    sheet.heading("Payment terms")
    sheet.paragraph(
        f"Payment within {invoice.payment_terms_days} days of the invoice date, by "
        f"{fmt.day(invoice.due_on)}. Please quote {invoice.number} with your payment."
    )
    return sheet.finish()


def render_receipt(data: ReceiptData) -> bytes:
    """The receipt as PDF bytes."""
    invoice = data.invoice
    payment = data.payment
    cur = invoice.currency
    sheet = Sheet(data.letterhead, "Receipt", data.receipt_number, data.meta)
    sheet.fields(
        [
            ("Receipt number", data.receipt_number),
            ("Received", fmt.day(payment.received_on)),
            ("From", invoice.customer_name),
            ("Method", fmt.words(payment.method)),
            ("Invoice", invoice.number),
            ("Reference", payment.reference or fmt.BLANK),
        ]
    )
    sheet.heading("Payment received")
    sheet.fields(
        [("Amount received", fmt.money(payment.amount_cents, cur))], columns=1, label_share=0.7
    )
    sheet.heading(f"Invoice {invoice.number}")
    sheet.table(
        [
            Column("Date", 1.4),
            Column("Method", 1.4),
            Column("Reference", 2),
            Column("Amount", 1.2, "right"),
        ],
        [
            [
                fmt.day(p.received_on),
                fmt.words(p.method),
                p.reference or fmt.BLANK,
                fmt.money(p.amount_cents, cur),
            ]
            for p in invoice.payments
        ],
    )
    sheet.space(2 * mm)
    balance = invoice.balance_cents
    sheet.fields(
        [
            ("Invoice total", fmt.money(invoice.gross_cents, cur)),
            ("Paid to date", fmt.money(invoice.paid_cents, cur)),
            ("Balance left" if balance >= 0 else "In credit", fmt.money(abs(balance), cur)),
        ],
        columns=1,
        label_share=0.7,
    )
    sheet.space(2 * mm)
    sheet.paragraph(
        "Paid in full. Thank you." if balance <= 0 else f"Still due by {fmt.day(invoice.due_on)}."
    )
    return sheet.finish()
