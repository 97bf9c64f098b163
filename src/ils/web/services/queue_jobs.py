"""Finding and operating on jobs for the monitoring API, scoped and audited.

Scope: a ``platform_admin`` sees every job; an ``admin`` or ``company_admin`` sees
the jobs made for their company (``JobRecord.company_id``, stamped when a request of
that company queued them) and nothing else: another company's job answers 404 as
an unknown one does. The fan-out over both stores (Redis, and the local store that
holds what was queued while Redis was down) is :class:`~ils.jobs.admin.JobAdmin`'s;
this module turns the signed-in user into its scope and writes the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.audit import AuditEntry, list_audit_entries
from ils.domain.companies import Role, User
from ils.jobs.admin import Found, JobAdmin
from ils.jobs.model import JobRecord, JobState
from ils.jobs.system import JobSystem

#: Roles that see and operate on every company's jobs.
PLATFORM_ROLES: Final = frozenset({Role.PLATFORM_ADMIN})


def sees_all(user: User) -> bool:
    """Whether ``user`` sees every company's jobs."""
    return user.role in PLATFORM_ROLES


async def visible_audit(
    session: AsyncSession, user: User, limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    """A page of the audit log ``user`` may read, newest first, and the total: every
    entry for a platform role, else its company's. The API and the dashboard both
    answer from here, so the two cannot disagree on who sees what."""
    company_id = None if sees_all(user) else user.company_id
    return await list_audit_entries(session, company_id, limit, offset)


def admin_for(system: JobSystem, user: User, session: AsyncSession | None = None) -> JobAdmin:
    """The job admin ``user`` may use; with ``session`` (a request that changes jobs),
    the local store works in the request's transaction (see ``JobAdmin.within``), so
    the change and its audit entry commit together, or neither does."""
    admin = system.admin.for_company(None if sees_all(user) else user.company_id)
    return admin if session is None else admin.within(session)


async def find_jobs(
    system: JobSystem,
    queue: str,
    state: JobState,
    user: User,
    *,
    text: str | None,
    offset: int,
    limit: int,
) -> Found:
    """A page of the jobs ``user`` may see in ``state``, newest first."""
    admin = admin_for(system, user)
    if text:
        return await admin.search_jobs(queue, state, text, offset=offset, limit=limit)
    return await admin.list_jobs(queue, state, offset=offset, limit=limit)


async def find_job(system: JobSystem, queue: str, job_id: str, user: User) -> JobRecord | None:
    """The job ``user`` may see, from whichever store holds it."""
    return await admin_for(system, user).find(queue, job_id)


def audit(
    session: AsyncSession,
    request: Request,
    user: User,
    now: datetime,
    action: str,
    queue: str,
    job_id: str | None = None,
    **detail: Any,
) -> None:
    """Record one operation in the request's transaction."""
    client = request.client.host if request.client else None
    agent = request.headers.get("user-agent")
    session.add(
        AuditEntry(
            at=now,
            user_id=user.id,
            user_email=user.email,
            company_id=user.company_id,
            action=action,
            queue=queue,
            job_id=job_id,
            detail=detail,
            ip=client,
            user_agent=agent[:300] if agent else None,
        )
    )
