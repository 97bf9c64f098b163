"""Request and response bodies of invoices and payments.

Amounts are integer minor units (``*_cents``) both ways: a JSON float would bring back
the rounding errors the integer columns exist to avoid. An invoice's response carries
its totals per VAT rate as the printed invoice shows them, plus what is paid and what
is still owed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ils.domain.billing import (
    STANDARD_RATE_BP,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
    VatTreatment,
)
from ils.web.schemas.common import Day, InputModel, Line100, Line500, OutputModel

MAX_LINES: Final = 200
MAX_QUANTITY: Final = 100_000
MAX_AMOUNT_CENTS: Final = 10_000_000_000
MAX_TERMS_DAYS: Final = 365

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class InvoiceLineIn(InputModel):
    """One line; the VAT rate defaults to the standard rate, or 0 when exempt."""

    description: Line500
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    unit_price_cents: int = Field(ge=0, le=MAX_AMOUNT_CENTS)
    vat_treatment: VatTreatment = VatTreatment.STANDARD
    vat_rate_bp: int = Field(
        default=STANDARD_RATE_BP,
        ge=0,
        le=10_000,
        description="Basis points (2000 = 20%); default 2000, or 0 for exempt lines.",
    )

    @model_validator(mode="before")
    @classmethod
    def _exempt_default(cls, data: Any) -> Any:
        """An exempt line sent without a rate gets 0, not the standard default."""
        if (
            isinstance(data, dict)
            and data.get("vat_treatment") == VatTreatment.EXEMPT.value
            and data.get("vat_rate_bp") is None
        ):
            return {**data, "vat_rate_bp": 0}
        return data

    @field_validator("vat_rate_bp")
    @classmethod
    def _no_rate_when_exempt(cls, rate: int, info: ValidationInfo) -> int:
        """Exempt lines carry no VAT (the database CHECK says the same)."""
        if info.data.get("vat_treatment") == VatTreatment.EXEMPT and rate != 0:
            raise ValueError("must be 0 for an exempt line")
        return rate


class InvoiceCreate(InputModel):
    """An invoice for an order; the customer is the order's practice."""

    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=MAX_LINES)
    payment_terms_days: int = Field(default=30, ge=0, le=MAX_TERMS_DAYS)
    currency: Currency = "GBP"
    issued_on: Day | None = Field(
        default=None, description="Default: today in the lab's time zone."
    )


class PaymentCreate(InputModel):
    """Money received against an invoice (no more than the balance due)."""

    amount_cents: int = Field(ge=1, le=MAX_AMOUNT_CENTS)
    method: PaymentMethod
    received_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    reference: Line100 | None = None


class InvoiceLineOut(OutputModel):
    """A line with its net amount."""

    id: str
    position: int
    description: str
    quantity: int
    unit_price_cents: int
    vat_treatment: VatTreatment
    vat_rate_bp: int
    net_cents: int


class VatRateOut(OutputModel):
    """The lines of one VAT treatment and rate, summed (VAT rounded once per rate)."""

    vat_treatment: VatTreatment
    vat_rate_bp: int
    net_cents: int
    vat_cents: int
    gross_cents: int


class PaymentOut(OutputModel):
    """A payment received."""

    id: str
    amount_cents: int
    method: PaymentMethod
    received_at: datetime
    reference: str | None


class InvoiceOut(OutputModel):
    """An invoice with its lines, totals per VAT rate, payments and balance."""

    id: str
    number: str
    company_id: str = Field(description="The issuer (a lab).")
    customer_id: str = Field(description="The practice invoiced.")
    order_id: str | None
    issued_on: date
    due_on: date
    currency: str
    payment_terms_days: int
    status: InvoiceStatus
    lines: list[InvoiceLineOut]
    vat_rates: list[VatRateOut]
    net_cents: int
    vat_cents: int
    gross_cents: int
    paid_cents: int
    balance_cents: int = Field(description="Gross total minus payments.")
    payments: list[PaymentOut]
    created_at: datetime

    @classmethod
    def build(cls, invoice: Invoice) -> InvoiceOut:
        """From the invoice with its lines and payments loaded."""
        totals = invoice.totals()
        paid = invoice.paid_cents()
        return cls.read_from(
            invoice,
            lines=[
                InvoiceLineOut.read_from(line, net_cents=line.quantity * line.unit_price_cents)
                for line in invoice.lines
            ],
            # A RateTotal has VatRateOut's fields (gross as a property): read them as is.
            vat_rates=[VatRateOut.model_validate(rate) for rate in totals.rates],
            net_cents=totals.net_cents,
            vat_cents=totals.vat_cents,
            gross_cents=totals.gross_cents,
            paid_cents=paid,
            balance_cents=totals.gross_cents - paid,
            payments=[
                PaymentOut.model_validate(payment)
                for payment in sorted(invoice.payments, key=lambda p: (p.received_at, p.id))
            ],
        )
