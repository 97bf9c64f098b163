"""How questions are read: periods, products, intents (pure functions, no database)."""

from __future__ import annotations

from datetime import date

import pytest

from ils.workers.ai.chat_periods import find_period
from ils.workers.ai.chat_questions import classify, match_products, refusal_reason, understand
from tests.workers.ai.conftest import TODAY


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("revenue last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("orders yesterday", date(2026, 11, 27), date(2026, 11, 27)),
        ("this week", date(2026, 11, 23), date(2026, 11, 28)),
        ("last week", date(2026, 11, 16), date(2026, 11, 22)),
        ("in October", date(2026, 10, 1), date(2026, 10, 31)),
        ("in December", date(2025, 12, 1), date(2025, 12, 31)),
        ("march 2026", date(2026, 3, 1), date(2026, 3, 31)),
        ("last 30 days", date(2026, 10, 30), date(2026, 11, 28)),
        ("past two weeks", date(2026, 11, 15), date(2026, 11, 28)),
        ("since 1 Nov", date(2026, 11, 1), date(2026, 11, 28)),
        ("since October", date(2026, 10, 1), date(2026, 11, 28)),
        ("between 1 Oct and 15 Oct", date(2026, 10, 1), date(2026, 10, 15)),
        ("on 2026-11-03", date(2026, 11, 3), date(2026, 11, 3)),
        ("on 3/11/2026", date(2026, 11, 3), date(2026, 11, 3)),
        ("this year", date(2026, 1, 1), date(2026, 11, 28)),
        ("the week of 23 November", date(2026, 11, 23), date(2026, 11, 28)),
        ("the week of 18 November", date(2026, 11, 16), date(2026, 11, 22)),
        ("week beginning the 2nd of November", date(2026, 11, 2), date(2026, 11, 8)),
        ("w/c 9 Nov", date(2026, 11, 9), date(2026, 11, 15)),
        ("week ending 20 November", date(2026, 11, 14), date(2026, 11, 20)),
    ],
)
def test_periods(text: str, start: date, end: date) -> None:
    found = find_period(text, TODAY)
    assert found is not None
    assert (found.period.start, found.period.end) == (start, end)


@pytest.mark.parametrize("text", ["may I see the orders", "ORD-2026-000042", "since 31 Feb"])
def test_no_period(text: str) -> None:
    assert find_period(text, TODAY) is None


def test_products_match_by_sku_or_distinctive_words() -> None:
    items = [
        ("SV-150", "Single vision 1.50 blank"),
        ("SV-160", "Single vision 1.60 blank"),
        ("PR-160", "Progressive 1.60 blank"),
        ("BF-150", "Bifocal 1.50 blank"),
    ]
    assert match_products("stock of pr160", items) == [2]
    assert match_products("how many bifocals", items) == [3]
    assert match_products("progressive 1.6 blanks", items) == [2]
    assert match_products("single vision", items) == [0, 1]
    assert match_products("how many blanks", items) == []


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("What's the status of ORD-2026-000042?", "order-status"),
        ("How many orders did we receive yesterday?", "orders-count"),
        ("How many jobs are in QC?", "orders-count"),
        ("Which orders are overdue?", "overdue-orders"),
        ("What orders are due tomorrow?", "orders-due"),
        ("Any overdue invoices?", "overdue-invoices"),
        ("Which invoices are overdue?", "overdue-invoices"),
        ("Which customers are paying late?", "overdue-invoices"),
        ("Which lens types sell most?", "lens-mix"),
        ("What kind of lenses do we sell most?", "lens-mix"),
        ("Most popular coatings?", "lens-mix"),
        ("Who is our best customer?", "by-company"),
        ("What do we owe?", "receivables"),
        ("How much did we get paid this month?", "payments"),
        ("What was our turnover last year?", "revenue"),
        ("How much did we make last month?", "revenue"),
        ("How long do orders take to ship?", "turnaround"),
        ("How many remakes in October?", "remake-rate"),
        ("How many eye tests did we do this week?", "examinations"),
        ("What's our best-selling lens?", "top-products"),
        ("How many PR-150 did we use in October?", "top-products"),
        ("What's running low?", "low-stock"),
        ("Do we have enough polishing compound?", "stock-level"),
        ("When will we run out of SV-150?", "reorder"),
        ("Forecast demand for the next 30 days", "forecast"),
        ("Anything unusual in revenue?", "anomalies"),
        ("Which practices order the most?", "by-company"),
        ("How much have we spent this month?", "unknown"),
        ("hello", "unknown"),
    ],
)
def test_intents(question: str, intent: str) -> None:
    assert classify(understand(question, TODAY)) == intent


def test_order_numbers_are_read_as_typed_and_normalised() -> None:
    found = understand("status of ord-2026-42 and ORD 2026 000043, and ORD-2026-000042?", TODAY)
    assert found.order_numbers == ("ORD-2026-000042", "ORD-2026-000043")


def test_a_possessive_name_reads_as_a_person_but_the_asking_company_does_not() -> None:
    assert understand("Has Jane Doe's order shipped?", TODAY).names_person
    own = "What is Clear View Lens Lab's revenue?"
    assert not understand(own, TODAY, own_name="Clear View Lens Lab").names_person


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Should I use eye drops for dry eyes?", "medical"),
        ("Should I reorder SV-150?", None),
        ("What is Mrs Patel's prescription?", "personal"),
        ("List our patients' names", "personal"),
        ("How many patients did we examine this month?", None),
        ("What's the Apple stock price?", "off-topic"),
        ("How much stock of SV-160 is left?", None),
        ("Who is our best customer?", None),
        ("Who is the prime minister?", "off-topic"),
    ],
)
def test_refusal_reasons(question: str, reason: str | None) -> None:
    assert refusal_reason(understand(question, TODAY)) == reason
