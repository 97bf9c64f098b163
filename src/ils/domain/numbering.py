"""Human-readable numbers: ``ORD-2026-000123``, ``INV-2026-00042``, ``PO-2026-00007``.

Design: one counter row per (scope, kind, year) in ``number_sequences``. Allocating
increments that row with ``UPDATE ... RETURNING`` **inside the caller's transaction**:

* On PostgreSQL the UPDATE takes the row lock, so a concurrent allocation waits for
  the first transaction to end and then reads the committed value (READ COMMITTED
  re-evaluates the row). A first allocation of a year inserts the row with
  ``INSERT ... ON CONFLICT DO NOTHING``; a racing insert waits on the unique key
  instead of failing.
* On SQLite every ILS write transaction begins ``IMMEDIATE`` (see
  ``ils.database.configure_sqlite``), so writers are serialized outright.

Because the counter moves in the same transaction as the order or invoice, a request
that rolls back gives its number back: numbers stay gapless, which invoices need. The
price is that allocations of one sequence queue behind each other until commit, so
allocate late in the request. The unique constraints on ``orders.number``,
``(invoices.company_id, number)`` and ``(purchase_orders.company_id, number)`` back
the counter up.

Order numbers are platform-wide (an order is shared by a practice and a lab, and
``orders.number`` is unique); invoice and PO numbers run per issuing company.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ils.database import Base
from ils.domain.types import ID_LENGTH

#: The scope of sequences shared by the whole platform (never a company id: 32 hex).
GLOBAL_SCOPE = "global"


class NumberKind(StrEnum):
    """The numbered documents; the value is the printed prefix."""

    ORDER = "ORD"
    INVOICE = "INV"
    PURCHASE_ORDER = "PO"


@dataclass(frozen=True)
class NumberFormat:
    """How a kind of number is scoped and printed."""

    digits: int
    per_company: bool


FORMATS: dict[NumberKind, NumberFormat] = {
    NumberKind.ORDER: NumberFormat(digits=6, per_company=False),
    NumberKind.INVOICE: NumberFormat(digits=5, per_company=True),
    NumberKind.PURCHASE_ORDER: NumberFormat(digits=5, per_company=True),
}


class NumberSequence(Base):
    """The next value of one sequence: per scope (company or global), kind and year."""

    __tablename__ = "number_sequences"
    __table_args__ = (CheckConstraint("next_value >= 1", name="next_value_positive"),)

    #: A company id, or :data:`GLOBAL_SCOPE` (so no foreign key).
    scope: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_value: Mapped[int] = mapped_column(BigInteger)


_SEQUENCES = cast(Table, NumberSequence.__table__)
#: Built once (a Core statement with bound parameters): building it per call cost as
#: much as the rest of an order's inserts.
BUMP_SEQUENCE = (
    update(_SEQUENCES)
    .where(
        _SEQUENCES.c.scope == bindparam("b_scope"),
        _SEQUENCES.c.kind == bindparam("b_kind"),
        _SEQUENCES.c.year == bindparam("b_year"),
    )
    .values(next_value=_SEQUENCES.c.next_value + 1)
    .returning(_SEQUENCES.c.next_value)
)


def format_number(kind: NumberKind, year: int, value: int) -> str:
    """``ORD-2026-000001`` style; a value past the digits simply gets longer."""
    return f"{kind.value}-{year:04d}-{value:0{FORMATS[kind].digits}d}"


def _scope(kind: NumberKind, company_id: str | None) -> str:
    if FORMATS[kind].per_company:
        if not company_id:
            raise ValueError(f"{kind.value} numbers run per company: pass company_id")
        return company_id
    if company_id is not None:
        raise ValueError(f"{kind.value} numbers are platform-wide: pass no company_id")
    return GLOBAL_SCOPE


async def allocate_value(
    session: AsyncSession, kind: NumberKind, *, year: int, company_id: str | None = None
) -> int:
    """The next value of the sequence, counted in the session's open transaction.

    Raises:
        ValueError: ``company_id`` given for a platform-wide kind, or missing for a
            per-company kind.
    """
    scope = _scope(kind, company_id)
    params = {"b_scope": scope, "b_kind": kind.value, "b_year": year}
    connection = await session.connection()
    taken = (await connection.execute(BUMP_SEQUENCE, params)).scalar_one_or_none()
    if taken is None:
        dialect = connection.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await connection.execute(
            insert(NumberSequence)
            .values(scope=scope, kind=kind.value, year=year, next_value=1)
            .on_conflict_do_nothing(index_elements=["scope", "kind", "year"])
        )
        taken = (await connection.execute(BUMP_SEQUENCE, params)).scalar_one()
    return int(taken) - 1


async def allocate_number(
    session: AsyncSession, kind: NumberKind, *, year: int, company_id: str | None = None
) -> str:
    """The next formatted number (``INV-2026-00001``), in the session's transaction.

    Args:
        session: The request's session; commit or roll back decides whether the number
            is used.
        kind: Which sequence.
        year: The year printed in the number (the caller decides the zone: the issuing
            company's local year for invoices).
        company_id: The issuing company for per-company kinds; ``None`` for orders.
    """
    value = await allocate_value(session, kind, year=year, company_id=company_id)
    return format_number(kind, year, value)
