"""Amounts of money as people read them: ``£1,234.50``, ``-£12.00``, ``CHF 9.99``.

Amounts are integer minor units (pence, cents) everywhere in ILS, so no float ever
rounds a price. One formatter serves documents, the AI's answers and the web pages,
so an amount reads the same wherever it appears.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

#: Currencies written with a symbol; any other is written with its ISO code.
SYMBOLS: Final = MappingProxyType({"GBP": "£", "EUR": "€", "USD": "$"})


def format_money(cents: int | float, currency: str = "GBP") -> str:
    """``£1,234.50`` for 123450 pence; a negative amount is ``-£12.00``. A float (an
    average, a forecast) is rounded to the minor unit first."""
    whole_cents = round(cents)
    sign = "-" if whole_cents < 0 else ""
    whole, rest = divmod(abs(whole_cents), 100)
    amount = f"{whole:,}.{rest:02d}"
    code = currency.upper()
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{code} {amount}"
