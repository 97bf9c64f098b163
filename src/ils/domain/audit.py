"""The audit log of queue operations: who did what to which job, when, from where.

Every operation of the job operations API (retry, remove, clean, promote, pause,
resume) writes one row in the request's own transaction, so an operation that fails
leaves no entry and one that happened always has one. Rows hold ids, counts and the
operation's parameters, never a job's payload.

:func:`list_audit_entries` is the one read of the log, shared by the API
(``GET /api/queue/audit``) and the dashboard's audit page so both show the same rows
in the same order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base
from ils.domain.paging import fetch_page
from ils.domain.types import ID_LENGTH, IdMixin, UtcDateTime


class AuditEntry(IdMixin, Base):
    """One operation by one user."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_company_at", "company_id", "at"),
    )

    at: Mapped[datetime] = mapped_column(UtcDateTime())
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    user_email: Mapped[str] = mapped_column(String(320))
    #: The acting user's company (an admin reads their company's entries).
    company_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    #: ``retry``, ``retry-failed``, ``remove``, ``clean``, ``promote``, ``pause``, ``resume``.
    action: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


async def list_audit_entries(
    session: AsyncSession, company_id: str | None, limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    """A page of the audit log, newest first, and the total.

    ``company_id``: the acting users' company whose entries to read; ``None`` reads
    every company's (a platform_admin, who runs the platform). The caller decides
    which applies to the reader: this function does not know about roles.
    """
    query = select(AuditEntry)
    if company_id is not None:
        query = query.where(AuditEntry.company_id == company_id)
    order = (AuditEntry.at.desc(), AuditEntry.id.desc())
    return await fetch_page(session, query, order, limit, offset)
