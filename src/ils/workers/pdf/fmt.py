"""How values are printed: dioptres signed to two places, money with its symbol.

One place for these rules, so the order sheet, the ticket and the tests agree on
what ``-2.25`` or ``£129.50`` looks like.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

#: Shown for a value that was not given, so a blank is never mistaken for zero.
BLANK = "-"

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def dioptres(value: Decimal | None) -> str:
    """``+1.50``, ``-2.25``, ``0.00``: sign always shown, as prescriptions are written."""
    if value is None:
        return BLANK
    if value == 0:
        return "0.00"
    return f"{value:+.2f}"


def plain(value: Decimal | int | None, places: int = 2) -> str:
    """A measurement (mm, mmHg, an index) without sign; ``-`` when missing."""
    if value is None:
        return BLANK
    if isinstance(value, int):
        return str(value)
    return f"{value:.{places}f}"


def mm(value: Decimal | None) -> str:
    """Millimetres to one decimal place at most (``63.5``, ``18``)."""
    if value is None:
        return BLANK
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def axis(value: int | None) -> str:
    """Axis in whole degrees."""
    return BLANK if value is None else str(value)


def prism(value: Decimal | None, base: str | None) -> str:
    """``1.00 base in``; ``-`` for none."""
    if value is None or value == 0:
        return BLANK
    return f"{value:.2f} base {base}" if base else f"{value:.2f}"


def money(cents: int, currency: str = "GBP") -> str:
    """``£1,234.50``; a negative amount is ``-£12.00``. Unknown currencies use the code."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    symbol = _SYMBOLS.get(currency.upper())
    amount = f"{whole:,}.{rest:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{currency.upper()} {amount}"


def vat_rate(treatment: str, rate_bp: int) -> str:
    """``20%`` for a rate, ``Exempt`` for an exempt line (the law wants the word)."""
    if treatment == "exempt":
        return "Exempt"
    percent = Decimal(rate_bp) / 100
    return f"{percent.normalize():f}%"


def day(value: date | None) -> str:
    """``4 Dec 2026``: unambiguous in every locale (unlike 04/12/2026)."""
    return BLANK if value is None else f"{value.day} {value:%b %Y}"


def words(code: str | None) -> str:
    """``anti_reflective`` → ``Anti reflective``; codes made readable."""
    if not code:
        return BLANK
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:]
