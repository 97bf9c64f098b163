"""What every AI job does around its computation: find the company, store, tell people.

* :func:`load_company` refuses a missing or inactive company with a permanent error
  (retrying would not make it exist).
* :func:`replace_results` makes a job idempotent: the rows an earlier attempt of the
  same job stored are deleted in the transaction that stores the new ones, so a
  retry after a crash leaves one set of results, never two.
* :func:`recipients` and :func:`notify` send in-app AI insight notifications to a
  company's managers (or chosen users), queued in the same transaction as the
  results so a notification never points at results that were rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Final, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import MANAGER_ROLES, Company, User
from ils.domain.content import AIResult, AIResultKind
from ils.errors import PermanentJobError
from ils.jobs.helpers import JobHelpers
from ils.jobs.producer import COMPANY_INFO_KEY

InsightType = Literal["briefing", "forecast", "anomaly", "recommendation"]

#: Notification summaries are at most this long (the payload's ``Summary`` type).
SUMMARY_LIMIT: Final = 2_000
TITLE_LIMIT: Final = 200


class AIDataError(PermanentJobError):
    """The job names data that does not exist (or not for that company): a retry
    would not make it exist, so the job fails at once with this reason."""


async def load_company(session: AsyncSession, company_id: str) -> Company:
    """The active company ``company_id``.

    Raises:
        AIDataError: no such company, or it is inactive.
    """
    company = await session.get(Company, company_id)
    if company is None or not company.is_active:
        raise AIDataError(f"company {company_id} does not exist or is inactive")
    # Jobs queued below are stamped with the company (the monitoring API's scope).
    session.info[COMPANY_INFO_KEY] = company.id
    return company


async def replace_results(
    session: AsyncSession,
    company: Company,
    kind: AIResultKind,
    job_id: str,
    results: Sequence[tuple[date | None, str | None, dict[str, Any]]],
) -> list[AIResult]:
    """Store ``(day, period, payload)`` rows for this job, replacing an earlier attempt's."""
    await session.execute(
        delete(AIResult).where(AIResult.job_id == job_id, AIResult.company_id == company.id)
    )
    rows = [
        AIResult(
            company_id=company.id, kind=kind, day=day, period=period, payload=payload, job_id=job_id
        )
        for day, period, payload in results
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def recipients(
    session: AsyncSession, company: Company, user_ids: Sequence[str] | None = None
) -> list[User]:
    """Active users to tell: ``user_ids`` (only those of this company), else the managers.

    Raises:
        AIDataError: a named user is not an active user of the company.
    """
    query = select(User).where(User.company_id == company.id, User.is_active.is_(True))
    if user_ids is None:
        query = query.where(User.role.in_(MANAGER_ROLES))
    else:
        query = query.where(User.id.in_(user_ids))
    users = list((await session.scalars(query.order_by(User.email))).all())
    if user_ids is not None:
        missing = sorted(set(user_ids) - {user.id for user in users})
        if missing:
            raise AIDataError(f"users {', '.join(missing)} are not active users of the company")
    return users


async def notify(
    session: AsyncSession,
    helpers: JobHelpers,
    users: Sequence[User],
    insight_type: InsightType,
    title: str,
    summary: str,
    detail_url: str | None = None,
) -> int:
    """Queue one AI insight notification per user in ``session``; how many."""
    for user in users:
        await helpers.queue_ai_insight_notification(
            user.id,
            insight_type,
            clip(title, TITLE_LIMIT),
            clip(summary, SUMMARY_LIMIT),
            detail_url,
            session=session,
        )
    return len(users)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 order``, ``3 orders``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
