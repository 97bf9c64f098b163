"""One page of a query and the total it pages through.

Every list of the API answers ``{items, total, limit, offset}``; the count and the
page are two statements on the same filtered query, written once here so each area's
read model only states its filters and its order.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

RowT = TypeVar("RowT")


async def count_rows(session: AsyncSession, query: Select[tuple[RowT]]) -> int:
    """How many rows ``query`` yields (its filters, no order or limit)."""
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    return int(total or 0)


async def fetch_page(
    session: AsyncSession,
    query: Select[tuple[RowT]],
    order_by: tuple[Any, ...],
    limit: int,
    offset: int,
) -> tuple[list[RowT], int]:
    """Rows ``offset`` to ``offset + limit`` of ``query`` in ``order_by`` order, and
    the total. ``order_by`` must end in a unique column, or pages could overlap."""
    total = await count_rows(session, query)
    rows = await session.scalars(query.order_by(*order_by).limit(limit).offset(offset))
    return list(rows.all()), total
