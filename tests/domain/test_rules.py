"""The domain's pure rules: exact hundredths, number formats, the order lifecycle and
invoice arithmetic (totals per VAT rate, balance and status after payments).

The expectations are written out by hand from docs/platform.md rather than derived
from the tables under test, so a wrong table fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ils.domain.billing import (
    InvoiceStatus,
    RateTotal,
    VatTreatment,
    balance_cents,
    invoice_totals,
    status_after_payments,
)
from ils.domain.numbering import NumberKind, format_number
from ils.domain.orders import (
    HOLDABLE,
    InvalidTransitionError,
    Order,
    OrderStatus,
    Side,
    allowed_transition,
)
from ils.domain.types import from_hundredths, to_hundredths

S = OrderStatus

# -- exact hundredths ---------------------------------------------------------------


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_hundredths_round_trip(hundredths: int) -> None:
    value = from_hundredths(hundredths)
    assert value == Decimal(hundredths) / 100
    assert to_hundredths(value) == hundredths
    assert to_hundredths(str(value)) == hundredths


def test_to_hundredths_rejects_precision_loss() -> None:
    assert to_hundredths(Decimal("-0.25")) == -25
    assert to_hundredths(3) == 300
    assert to_hundredths(Decimal("1.2500")) == 125
    for bad, reason in (
        (Decimal("0.001"), "more than two decimals"),
        ("1.005", "more than two decimals"),
        (Decimal("NaN"), "not a finite number"),
        (Decimal("Infinity"), "not a finite number"),
        ("abc", "not a number"),
    ):
        with pytest.raises(ValueError, match=reason):
            to_hundredths(bad)
    for wrong in (0.5, True):
        with pytest.raises(TypeError):
            to_hundredths(wrong)  # type: ignore[arg-type]


def test_number_format() -> None:
    assert format_number(NumberKind.ORDER, 2026, 42) == "ORD-2026-000042"
    assert format_number(NumberKind.INVOICE, 2026, 7) == "INV-2026-00007"
    assert format_number(NumberKind.PURCHASE_ORDER, 2026, 123456) == "PO-2026-123456"


# -- order lifecycle ----------------------------------------------------------------

# Written out by hand from docs/platform.md, independently of TRANSITIONS.
EXPECTED_MOVES = {
    (S.SUBMITTED, S.ACCEPTED, Side.LAB),
    (S.ACCEPTED, S.IN_PRODUCTION, Side.LAB),
    (S.IN_PRODUCTION, S.QUALITY_CHECK, Side.LAB),
    (S.SHIPPED, S.DELIVERED, Side.LAB),
    (S.SUBMITTED, S.CANCELLED, Side.PRACTICE),
    (S.ACCEPTED, S.CANCELLED, Side.LAB),
    (S.ACCEPTED, S.ON_HOLD, Side.LAB),
    (S.IN_PRODUCTION, S.ON_HOLD, Side.LAB),
    (S.QUALITY_CHECK, S.ON_HOLD, Side.LAB),
}


def test_lifecycle_allows_exactly_the_documented_moves() -> None:
    allowed = {
        (a, b, side)
        for a in OrderStatus
        for b in OrderStatus
        for side in Side
        if a != S.ON_HOLD and allowed_transition(a, b, side)
    }
    assert allowed == EXPECTED_MOVES


def test_shipped_only_through_the_ship_endpoint() -> None:
    assert not allowed_transition(S.QUALITY_CHECK, S.SHIPPED, Side.LAB)
    assert allowed_transition(S.QUALITY_CHECK, S.SHIPPED, Side.LAB, via_ship=True)
    assert not allowed_transition(S.QUALITY_CHECK, S.SHIPPED, Side.PRACTICE, via_ship=True)
    assert not allowed_transition(S.IN_PRODUCTION, S.SHIPPED, Side.LAB, via_ship=True)
    # The ship endpoint does nothing but ship.
    assert not allowed_transition(S.SUBMITTED, S.ACCEPTED, Side.LAB, via_ship=True)


@pytest.mark.parametrize("left", sorted(HOLDABLE))
def test_on_hold_goes_back_only_to_the_state_it_left(left: OrderStatus) -> None:
    for to in OrderStatus:
        for side in Side:
            expected = to == left and side == Side.LAB
            assert allowed_transition(S.ON_HOLD, to, side, held_from=left) is expected
    assert not any(allowed_transition(S.ON_HOLD, to, Side.LAB) for to in OrderStatus)


def test_change_status_records_history_and_the_hold() -> None:
    order = Order(status=S.SUBMITTED)
    steps = [
        (S.ACCEPTED, Side.LAB),
        (S.IN_PRODUCTION, Side.LAB),
        (S.ON_HOLD, Side.LAB),
    ]
    changes = [order.change_status(to, side, changed_by="u") for to, side in steps]
    assert [(c.from_status, c.to_status) for c in changes] == [
        (S.SUBMITTED, S.ACCEPTED),
        (S.ACCEPTED, S.IN_PRODUCTION),
        (S.IN_PRODUCTION, S.ON_HOLD),
    ]
    assert all(c.order is order for c in changes)
    assert order.held_from_status == S.IN_PRODUCTION
    with pytest.raises(InvalidTransitionError):
        order.change_status(S.ACCEPTED, Side.LAB, changed_by="u")
    assert order.status == S.ON_HOLD
    order.change_status(S.IN_PRODUCTION, Side.LAB, changed_by="u")
    assert (order.status, order.held_from_status) == (S.IN_PRODUCTION, None)
    with pytest.raises(InvalidTransitionError):
        order.change_status(S.QUALITY_CHECK, Side.PRACTICE, changed_by="u")


# -- invoices -----------------------------------------------------------------------


@dataclass
class Line:
    quantity: int
    unit_price_cents: int
    vat_treatment: VatTreatment = VatTreatment.STANDARD
    vat_rate_bp: int = 2000


def test_totals_per_vat_rate() -> None:
    totals = invoice_totals([
        Line(2, 4500),                                   # two lenses
        Line(1, 2500, VatTreatment.EXEMPT, 0),           # dispensing: exempt
        Line(1, 1999),                                   # frame
    ])  # fmt: skip
    assert totals.rates == (
        RateTotal(VatTreatment.STANDARD, 2000, net_cents=10999, vat_cents=2200),
        RateTotal(VatTreatment.EXEMPT, 0, net_cents=2500, vat_cents=0),
    )
    assert (totals.net_cents, totals.vat_cents, totals.gross_cents) == (13499, 2200, 15699)


def test_vat_is_rounded_half_up_once_per_rate() -> None:
    # Per line, 2 cents at 20% would round to 0 VAT three times; per rate it is 1 cent.
    assert invoice_totals([Line(1, 2)] * 3).vat_cents == 1
    # 10 cents at 5% is 0.5: half up gives 1 (banker's rounding would give 0).
    assert invoice_totals([Line(1, 10, vat_rate_bp=500)]).vat_cents == 1
    assert invoice_totals([Line(1, 9, vat_rate_bp=500)]).vat_cents == 0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (Line(1, 100, VatTreatment.EXEMPT, 2000), "exempt line carries no VAT rate"),
        (Line(0, 100), "quantity of at least 1"),
        (Line(1, -1), "price >= 0"),
        (Line(1, 100, vat_rate_bp=10001), "between 0 and 10000"),
    ],
)
def test_totals_refuse_inconsistent_lines(bad: Line, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        invoice_totals([bad])


def test_balance_and_status_after_payments() -> None:
    assert balance_cents(15699, [5000, 699]) == 10000
    assert balance_cents(15699, [15699]) == 0
    assert balance_cents(100, [150]) == -50
    assert status_after_payments(15699, 0) == InvoiceStatus.ISSUED
    assert status_after_payments(15699, 1) == InvoiceStatus.PARTIALLY_PAID
    assert status_after_payments(15699, 15698) == InvoiceStatus.PARTIALLY_PAID
    assert status_after_payments(15699, 15699) == InvoiceStatus.PAID
    assert status_after_payments(15699, 20000) == InvoiceStatus.PAID
