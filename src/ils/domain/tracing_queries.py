"""Read model of an order's lens tracing: what the OMA worker made of its files.

The caller finds the order first, scoped to the user's company (practice or lab side,
:func:`~ils.domain.scoping.get_scoped`); this module then reads only that order's
rows, so it never needs the company itself.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import OrderTracing
from ils.domain.scoping import one_or_not_found


async def current_tracing(session: AsyncSession, order_id: str) -> OrderTracing:
    """The tracing of the order's newest processed file (a new upload supersedes).

    Raises:
        NotFoundError: no tracing file of the order has been processed yet.
    """
    query = (
        select(OrderTracing)
        .where(OrderTracing.order_id == order_id)
        .order_by(OrderTracing.created_at.desc(), OrderTracing.id.desc())
        .limit(1)
    )
    return await one_or_not_found(session, query, "OrderTracing")


async def tracing_history(session: AsyncSession, order_id: str) -> list[OrderTracing]:
    """Every processed tracing file of the order, newest first (for the work ticket:
    the newest says whether the last upload was refused, an older one may give the
    shape drawn)."""
    rows = await session.scalars(
        select(OrderTracing)
        .where(OrderTracing.order_id == order_id)
        .order_by(OrderTracing.created_at.desc(), OrderTracing.id.desc())
    )
    return list(rows)
