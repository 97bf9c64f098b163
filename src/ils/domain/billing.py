"""A lab's invoices to practices, their lines and the payments received.

Money is integer minor units (``*_cents``) throughout. VAT is computed per rate on the
net total of that rate's lines, rounded half up once per rate (the invoice-level
rounding HMRC allows), so the totals printed on the invoice add up exactly. In the UK
optical trade, goods (lenses, frames) are standard-rated (20%, ``2000`` basis points)
while the dispensing service is exempt; one invoice often carries both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.companies import Company
from ils.domain.orders import Order
from ils.domain.types import (
    CreatedAtMixin,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
    utcnow,
)

#: The UK standard VAT rate in basis points (20%).
STANDARD_RATE_BP = 2000
_BP_PER_UNIT = Decimal(10_000)


class InvoiceStatus(StrEnum):
    """Where an invoice stands; derived from payments except ``void``."""

    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"


class VatTreatment(StrEnum):
    """How a line is taxed: standard-rated goods or an exempt service."""

    STANDARD = "standard"
    EXEMPT = "exempt"


#: The UK reduced rate (5%: e.g. domestic fuel, some energy-saving goods) in basis points.
REDUCED_RATE_BP = 500
#: The UK zero rate: taxable at 0%, unlike an exempt supply, which is outside VAT.
ZERO_RATE_BP = 0


class VatRateBand(StrEnum):
    """The UK name of a line's VAT rate, as an invoice must print it.

    A taxable line's band follows from its rate (``standard`` treatment at 500 basis
    points is the *reduced* rate, not "standard 5%"); ``exempt`` comes from the
    treatment, and a rate HMRC does not define today (a historical 17.5%) is ``other``.
    """

    STANDARD = "standard"
    REDUCED = "reduced"
    ZERO = "zero"
    EXEMPT = "exempt"
    OTHER = "other"


def vat_band(treatment: str, rate_bp: int) -> VatRateBand:
    """The UK band of a line taxed ``treatment`` at ``rate_bp`` basis points."""
    if VatTreatment(treatment) == VatTreatment.EXEMPT:
        return VatRateBand.EXEMPT
    if rate_bp == STANDARD_RATE_BP:
        return VatRateBand.STANDARD
    if rate_bp == REDUCED_RATE_BP:
        return VatRateBand.REDUCED
    if rate_bp == ZERO_RATE_BP:
        return VatRateBand.ZERO
    return VatRateBand.OTHER


def vat_rate_name(treatment: str, rate_bp: int) -> str:
    """``Standard rate 20%``, ``Reduced rate 5%``, ``Zero rate 0%``, ``Exempt``.

    The names HMRC uses, so a reader tells a zero-rated line (taxable at 0%) from an
    exempt one, and a 5% line is never called standard. Any other rate prints as
    ``VAT 17.5%``.
    """
    band = vat_band(treatment, rate_bp)
    if band == VatRateBand.EXEMPT:
        return "Exempt"
    percent = f"{(Decimal(rate_bp) / 100).normalize():f}%"
    if band == VatRateBand.OTHER:
        return f"VAT {percent}"
    return f"{band.value.capitalize()} rate {percent}"


class PaymentMethod(StrEnum):
    """How a payment was received."""

    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"


class VatLine(Protocol):
    """What the totals need of a line: an ``InvoiceLine`` or an API input both fit."""

    @property
    def quantity(self) -> int: ...
    @property
    def unit_price_cents(self) -> int: ...
    @property
    def vat_treatment(self) -> VatTreatment: ...
    @property
    def vat_rate_bp(self) -> int: ...


@dataclass(frozen=True)
class RateTotal:
    """The lines of one VAT treatment and rate, summed."""

    vat_treatment: VatTreatment
    vat_rate_bp: int
    net_cents: int
    vat_cents: int

    @property
    def gross_cents(self) -> int:
        """Net plus VAT."""
        return self.net_cents + self.vat_cents


@dataclass(frozen=True)
class InvoiceTotals:
    """An invoice's totals, per rate (highest rate first) and overall."""

    rates: tuple[RateTotal, ...]

    @property
    def net_cents(self) -> int:
        """Sum of line nets."""
        return sum(rate.net_cents for rate in self.rates)

    @property
    def vat_cents(self) -> int:
        """Sum of the VAT of every rate."""
        return sum(rate.vat_cents for rate in self.rates)

    @property
    def gross_cents(self) -> int:
        """What the customer owes before payments."""
        return self.net_cents + self.vat_cents


def vat_cents(net_cents: int, rate_bp: int) -> int:
    """VAT on ``net_cents`` at ``rate_bp`` basis points, rounded half up to a cent."""
    vat = Decimal(net_cents) * Decimal(rate_bp) / _BP_PER_UNIT
    return int(vat.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def invoice_totals(lines: Iterable[VatLine]) -> InvoiceTotals:
    """Totals of ``lines`` per (treatment, rate) with VAT rounded once per rate.

    Raises:
        ValueError: a line with a quantity below 1, a negative price, a rate outside
            0..10000, or an exempt line with a non-zero rate (the same rules the
            database CHECKs enforce, caught before a write).
    """
    nets: dict[tuple[VatTreatment, int], int] = {}
    for line in lines:
        treatment = VatTreatment(line.vat_treatment)
        if line.quantity < 1 or line.unit_price_cents < 0:
            raise ValueError("invoice lines need a quantity of at least 1 and a price >= 0")
        if not 0 <= line.vat_rate_bp <= 10_000:
            raise ValueError("vat_rate_bp must be between 0 and 10000")
        if treatment == VatTreatment.EXEMPT and line.vat_rate_bp != 0:
            raise ValueError("an exempt line carries no VAT rate")
        key = (treatment, line.vat_rate_bp)
        nets[key] = nets.get(key, 0) + line.quantity * line.unit_price_cents
    ordered = sorted(nets.items(), key=lambda item: (-item[0][1], item[0][0].value))
    return InvoiceTotals(
        tuple(
            RateTotal(treatment, rate, net, vat_cents(net, rate))
            for (treatment, rate), net in ordered
        )
    )


def balance_cents(gross_cents: int, payments_cents: Iterable[int]) -> int:
    """What is still owed; negative when the customer paid too much (a credit)."""
    return gross_cents - sum(payments_cents)


def status_after_payments(gross_cents: int, paid_cents: int) -> InvoiceStatus:
    """The status payments put a (not void) invoice in."""
    if paid_cents <= 0 and gross_cents > 0:
        return InvoiceStatus.ISSUED
    if paid_cents >= gross_cents:
        return InvoiceStatus.PAID
    return InvoiceStatus.PARTIALLY_PAID


class Invoice(IdMixin, TimestampMixin, Base):
    """An invoice issued by a lab (``company_id``) to a practice (``customer_id``).

    ``number`` (``INV-YYYY-NNNNN``) is unique per issuer: each lab has its own
    sequence from :mod:`ils.domain.numbering`. Lines and payments load with the
    invoice (``selectin``) because every view of an invoice shows its totals.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("company_id", "number", name="uq_invoices_company_number"),
        Index("ix_invoices_company_status", "company_id", "status"),
        CheckConstraint("customer_id <> company_id", name="customer_is_not_issuer"),
        CheckConstraint("payment_terms_days >= 0", name="payment_terms_non_negative"),
        CheckConstraint("due_on >= issued_on", name="due_after_issue"),
    )

    number: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[str] = foreign_id("companies.id")
    customer_id: Mapped[str] = foreign_id("companies.id", index=True)
    order_id: Mapped[str | None] = foreign_id("orders.id", index=True)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    #: ISO 4217 code.
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[InvoiceStatus] = mapped_column(
        StrEnumType(InvoiceStatus, 16), default=InvoiceStatus.ISSUED
    )

    company: Mapped[Company] = relationship(foreign_keys=[company_id])
    customer: Mapped[Company] = relationship(foreign_keys=[customer_id])
    order: Mapped[Order | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        cascade="all, delete-orphan",
        order_by="InvoiceLine.position",
        lazy="selectin",
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="invoice", order_by="Payment.received_at", lazy="selectin"
    )

    def totals(self) -> InvoiceTotals:
        """Totals of the loaded lines."""
        return invoice_totals(self.lines)

    def paid_cents(self) -> int:
        """Sum of the loaded payments."""
        return sum(payment.amount_cents for payment in self.payments)

    def balance_cents(self) -> int:
        """Gross total minus payments."""
        return balance_cents(self.totals().gross_cents, (p.amount_cents for p in self.payments))


class InvoiceLine(IdMixin, Base):
    """One line; its net is ``quantity * unit_price_cents``, VAT is per invoice rate."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_non_negative"),
        CheckConstraint("vat_rate_bp BETWEEN 0 AND 10000", name="vat_rate_range"),
        CheckConstraint("vat_treatment <> 'exempt' OR vat_rate_bp = 0", name="exempt_no_rate"),
    )

    invoice_id: Mapped[str] = foreign_id("invoices.id", ondelete="CASCADE", index=True)
    #: Order of the lines on the printed invoice.
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    vat_treatment: Mapped[VatTreatment] = mapped_column(StrEnumType(VatTreatment, 16))
    #: Basis points: 2000 is 20%; 0 for exempt lines.
    vat_rate_bp: Mapped[int] = mapped_column(Integer)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(IdMixin, CreatedAtMixin, Base):
    """Money received against an invoice, recorded by the issuer (``company_id``)."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    invoice_id: Mapped[str] = foreign_id("invoices.id", index=True)
    company_id: Mapped[str] = foreign_id("companies.id", index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[PaymentMethod] = mapped_column(StrEnumType(PaymentMethod, 16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reference: Mapped[str | None] = mapped_column(String(100))

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
