"""Human-readable numbers: ``ORD-2026-000123``, ``INV-2026-00042``, ``PO-2026-00007``.

Design: one counter row per (scope, kind, year) in ``number_sequences``, incremented
with ``UPDATE ... RETURNING``. Two policies, by kind:

* **Gapless** (invoices, purchase orders): the counter moves **inside the caller's
  transaction**, so a request that rolls back gives its number back. On PostgreSQL
  the UPDATE takes the row lock and a concurrent allocation waits for the first
  transaction to end (READ COMMITTED then re-reads the row); allocations of one
  sequence queue behind each other until commit, so allocate late in the request.
* **Gaps allowed** (orders, one platform-wide sequence that every order of every
  practice bumps): on PostgreSQL the number is taken in a short transaction of its
  own, committed before the order's, so the row lock lasts one statement instead of
  the whole request. That transaction runs on an engine with a pool of its own
  (:func:`ils.db.engine.create_numbering_engine`): on the request's pool, requests
  holding a connection while waiting for a second one could exhaust it and wait
  forever. Holding it for the request made every order wait for the one
  before it to commit (bench/orders.py: p99 346 ms at 47 orders/s, the waits all on
  this row). The own transaction commits asynchronously (``synchronous_commit =
  off``): the order's own commit flushes the log past it, so an order never survives
  a crash that its number did not. A failed order leaves a gap. On SQLite every write
  transaction holds the one write lock anyway (``BEGIN IMMEDIATE``, see
  ``ils.db.engine.configure_sqlite``), so the number is counted in the caller's
  transaction there and a second transaction would only add a commit.

A first allocation of a year inserts the row with ``INSERT ... ON CONFLICT DO
NOTHING``; a racing insert waits on the unique key instead of failing. The unique
constraints on ``orders.number``, ``(invoices.company_id, number)`` and
``(purchase_orders.company_id, number)`` back the counter up.

Order numbers are platform-wide (an order is shared by a practice and a lab, and
``orders.number`` is unique); invoice and PO numbers run per issuing company.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base
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
    #: Numbers given back on rollback (see the module docstring).
    gapless: bool = True


FORMATS: dict[NumberKind, NumberFormat] = {
    NumberKind.ORDER: NumberFormat(digits=6, per_company=False, gapless=False),
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


async def _bump(connection: AsyncConnection, params: dict[str, Any]) -> int:
    """Increment the counter row (creating it at 1) and return the value taken."""
    taken = (await connection.execute(BUMP_SEQUENCE, params)).scalar_one_or_none()
    if taken is None:
        dialect = connection.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await connection.execute(
            insert(NumberSequence)
            .values(
                scope=params["b_scope"], kind=params["b_kind"], year=params["b_year"], next_value=1
            )
            .on_conflict_do_nothing(index_elements=["scope", "kind", "year"])
        )
        taken = (await connection.execute(BUMP_SEQUENCE, params)).scalar_one()
    return int(taken) - 1


async def allocate_number(
    session: AsyncSession,
    kind: NumberKind,
    *,
    year: int,
    company_id: str | None = None,
    own_engine: AsyncEngine | None = None,
) -> str:
    """The next formatted number (``INV-2026-00001``), counted by the kind's policy
    (module docstring).

    Args:
        session: The request's session; for gapless kinds its commit or rollback
            decides whether the number is used.
        kind: Which sequence.
        year: The year printed in the number (the caller decides the zone: the issuing
            company's local year for invoices).
        company_id: The issuing company for per-company kinds; ``None`` for orders.
        own_engine: The numbering engine, if the database has one (PostgreSQL): kinds
            that allow gaps take their number in a transaction of their own on it;
            without it they are counted in the session's.

    Raises:
        ValueError: ``company_id`` given for a platform-wide kind, or missing for a
            per-company kind.
    """
    scope = _scope(kind, company_id)
    params = {"b_scope": scope, "b_kind": kind.value, "b_year": year}
    if own_engine is not None and not FORMATS[kind].gapless:
        async with own_engine.begin() as own:
            await own.exec_driver_sql("SET LOCAL synchronous_commit = off")
            value = await _bump(own, params)
    else:
        value = await _bump(await session.connection(), params)
    return format_number(kind, year, value)
