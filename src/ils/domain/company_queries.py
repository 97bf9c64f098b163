"""Read model of companies as other records name them: display names by id.

Pages that list records of several companies (the dashboard's schedules, which a
platform admin sees for every company) show a company's name beside its id. The
lookup is not scoped by itself: it names only the ids it is given, and the caller
passes ids of records it already scoped to the signed-in user, so it reveals no
company the user could not see already.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company


async def company_names(session: AsyncSession, company_ids: Iterable[str]) -> dict[str, str]:
    """The name of each of ``company_ids`` by id, in one query; an id with no company
    (deleted since) is left out, and no ids means no query at all."""
    wanted = set(company_ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Company.id, Company.name).where(Company.id.in_(wanted)))
    return {row.id: row.name for row in rows}
