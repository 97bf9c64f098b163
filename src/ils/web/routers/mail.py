"""The sent-mail log (``/api/mail``): what the e-mail worker sent, for admins.

Who may: platform_admin, admin and company_admin. A platform_admin sees every
message of the platform (it runs it, like the queue monitoring); an admin or
company_admin sees the messages sent on behalf of their company and those sent to
its people. Bodies are never stored, so none are shown.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Select, func, or_, select

from ils.domain.companies import MANAGER_ROLES, Role, User
from ils.domain.mail import MailMessage, MailState
from ils.web.deps import SessionDep, require_roles
from ils.web.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, Page, error_responses
from ils.web.schemas.mail import MailMessageOut

router = APIRouter(prefix="/api/mail", tags=["mail"])

#: Roles that see every company's messages; the other managers see their company's.
PLATFORM_WIDE: Final = frozenset({Role.PLATFORM_ADMIN})

MailReader = Annotated[User, Depends(require_roles(*MANAGER_ROLES))]


def _visible(user: User) -> Select[tuple[MailMessage]]:
    query = select(MailMessage)
    if user.role in PLATFORM_WIDE:
        return query
    return query.where(
        or_(
            MailMessage.company_id == user.company_id,
            MailMessage.recipient_company_id == user.company_id,
        )
    )


@router.get("", summary="Sent-mail log", responses=error_responses(401, 403))
async def list_mail(
    user: MailReader,
    session: SessionDep,
    state: MailState | None = None,
    job_id: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[MailMessageOut]:
    """E-mail messages, newest first: recipient, subject, job, times and state."""
    query = _visible(user)
    if state is not None:
        query = query.where(MailMessage.state == state)
    if job_id is not None:
        query = query.where(MailMessage.job_id == job_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [MailMessageOut.model_validate(row) for row in rows]
    return Page[MailMessageOut](items=items, total=int(total or 0), limit=limit, offset=offset)
