"""The sent-mail log (``/api/mail``): what the e-mail worker sent, for admins.

Who may: platform_admin, admin and company_admin. A platform_admin sees every
message of the platform (it runs it, like the queue monitoring); an admin or
company_admin sees the messages sent on behalf of their company and those sent to
its people. Bodies are never stored, so none are shown.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query

from ils.domain import mail_queries
from ils.domain.companies import Role, User
from ils.domain.mail import MailState
from ils.web.deps import ManagerUser, PagingDep, SessionDep
from ils.web.schemas.common import Page, error_responses
from ils.web.schemas.mail import MailMessageOut

router = APIRouter(prefix="/api/mail", tags=["mail"])

#: Roles that see every company's messages; the other managers see their company's.
PLATFORM_WIDE: Final = frozenset({Role.PLATFORM_ADMIN})


def _scope(user: User) -> str | None:
    """The company whose mail ``user`` reads; ``None`` for every company's."""
    return None if user.role in PLATFORM_WIDE else user.company_id


@router.get("", summary="Sent-mail log", responses=error_responses(401, 403))
async def list_mail(
    user: ManagerUser,
    session: SessionDep,
    paging: PagingDep,
    state: MailState | None = None,
    job_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Page[MailMessageOut]:
    """E-mail messages, newest first: recipient, subject, job, times and state."""
    rows, total = await mail_queries.list_mail(
        session, _scope(user), state, job_id, paging.limit, paging.offset
    )
    return paging.page(rows, total, MailMessageOut.model_validate)
