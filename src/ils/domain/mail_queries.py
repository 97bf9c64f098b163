"""Read model of the sent-mail log.

Who sees what is decided by the caller and passed as ``company_id``: a company's
managers see the messages sent on behalf of their company and those sent to its
people; ``None`` means every company's messages (the platform admin, who runs the
platform). Bodies are never stored, so none can leak from here.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.mail import MailMessage, MailState
from ils.domain.paging import fetch_page


async def list_mail(
    session: AsyncSession,
    company_id: str | None,
    state: MailState | None,
    job_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[MailMessage], int]:
    """A page of the messages visible to ``company_id`` (all when ``None``), newest
    first, only in ``state`` and of ``job_id`` when given, and the total."""
    query = select(MailMessage)
    if company_id is not None:
        query = query.where(
            or_(
                MailMessage.company_id == company_id,
                MailMessage.recipient_company_id == company_id,
            )
        )
    if state is not None:
        query = query.where(MailMessage.state == state)
    if job_id is not None:
        query = query.where(MailMessage.job_id == job_id)
    order = (MailMessage.created_at.desc(), MailMessage.id.desc())
    return await fetch_page(session, query, order, limit, offset)
