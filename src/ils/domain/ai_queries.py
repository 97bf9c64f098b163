"""Read model of the AI results a company may read (briefings, forecasts, anomalies,
insights).

Results belong to a company, not a user: any role of the company reads them, and
every query here filters on the company, so another company's result id answers
:class:`~ils.errors.NotFoundError` exactly like an unknown one.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import AIResult, AIResultKind
from ils.domain.paging import fetch_page
from ils.domain.scoping import get_scoped, one_or_not_found


async def list_results(
    session: AsyncSession, company_id: str, kind: AIResultKind | None, limit: int, offset: int
) -> tuple[list[AIResult], int]:
    """A page of the company's results, newest first (by the day they are for, then
    creation), and the total."""
    query = select(AIResult).where(AIResult.company_id == company_id)
    if kind is not None:
        query = query.where(AIResult.kind == kind)
    order = (AIResult.day.desc(), AIResult.created_at.desc(), AIResult.id)
    return await fetch_page(session, query, order, limit, offset)


async def get_result(session: AsyncSession, company_id: str, result_id: str) -> AIResult:
    """The company's result ``result_id``.

    Raises:
        NotFoundError: unknown id or another company's result.
    """
    return await get_scoped(session, AIResult, result_id, company_id)


async def newest_briefing(session: AsyncSession, company_id: str, day: date) -> AIResult:
    """The company's newest briefing for ``day`` (a rerun replaces what the page shows,
    while older runs stay on record).

    Raises:
        NotFoundError: no briefing of that day.
    """
    query = (
        select(AIResult)
        .where(
            AIResult.company_id == company_id,
            AIResult.kind == AIResultKind.BRIEFING,
            AIResult.day == day,
        )
        .order_by(AIResult.created_at.desc())
        .limit(1)
    )
    return await one_or_not_found(session, query, "AIResult")
