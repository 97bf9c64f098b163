"""How values are printed: dioptres signed to two places, money with its symbol.

One place for these rules, so the order sheet, the ticket and the tests agree on
what ``-2.25``, ``175°``, ``1.50Δ base in`` or ``£129.50`` looks like. ``axis`` is the
bare form the examination form's tables print; a prescription is printed with
``axis_degrees`` and ``prism_dioptres`` / ``compound_prism``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from ils.domain.billing import vat_rate_name as _vat_rate_name
from ils.domain.money import format_money
from ils.workers.pdf.fonts import has_prism_sign

#: Shown for a value that was not given, so a blank is never mistaken for zero.
BLANK = "-"


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


def axis_degrees(value: int | None) -> str:
    """``175°``: an axis with its degree sign, as a prescription is written (the sign
    tells an axis from a dioptre or a millimetre at a glance); ``-`` when missing."""
    return BLANK if value is None else f"{value}°"


def prism_sign() -> str:
    """``Δ`` (prism dioptre) when the document font has it, else ``" prism dioptres"``:
    the spelled-out fallback of the Helvetica path (see ``fonts``)."""
    return "Δ" if has_prism_sign() else " prism dioptres"


def prism_dioptres(value: Decimal | None, base: str | None) -> str:
    """``1.50Δ base in``: one prism component, amount with its sign and base direction;
    ``-`` for none. A prism without a base is printed ``1.50Δ base ?`` so the missing
    direction shows rather than passes as complete."""
    if value is None or value == 0:
        return BLANK
    return f"{value:.2f}{prism_sign()} base {base or '?'}"


def compound_prism(parts: Iterable[tuple[Decimal | None, str | None]]) -> str:
    """``1.50Δ base in, 0.50Δ base up``: every component of one eye's prism (a compound
    prism has a horizontal and a vertical one); ``-`` when none has an amount."""
    printed = [prism_dioptres(value, base) for value, base in parts if value]
    return ", ".join(printed) or BLANK


def money(cents: int, currency: str = "GBP") -> str:
    """``£1,234.50``; a negative amount is ``-£12.00``. Unknown currencies use the code."""
    return format_money(cents, currency)


def vat_rate(treatment: str, rate_bp: int) -> str:
    """``20%`` for a rate, ``Exempt`` for an exempt line (the law wants the word)."""
    if treatment == "exempt":
        return "Exempt"
    percent = Decimal(rate_bp) / 100
    return f"{percent.normalize():f}%"


def vat_rate_name(treatment: str, rate_bp: int) -> str:
    """``Standard rate 20%``, ``Reduced rate 5%``, ``Zero rate 0%``, ``Exempt``: the UK
    names (``ils.domain.billing.vat_rate_name``), for the VAT analysis of an invoice."""
    return _vat_rate_name(treatment, rate_bp)


def day(value: date | None) -> str:
    """``4 Dec 2026``: unambiguous in every locale (unlike 04/12/2026)."""
    return BLANK if value is None else f"{value.day} {value:%b %Y}"


def words(code: str | None) -> str:
    """``anti_reflective`` → ``Anti reflective``; codes made readable."""
    if not code:
        return BLANK
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:]
