"""Notification use cases of the signed-in user: mark read, mark all read, delete.

Each acts on the user's own notifications in their current company only (found
through :mod:`ils.domain.notification_queries`), so another user's id answers like an
unknown one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import User
from ils.domain.content import Notification
from ils.domain.notification_queries import get_notification


async def mark_all_read(session: AsyncSession, user: User, now: datetime) -> int:
    """Mark every unread notification of the user read at ``now``; returns how many
    were unread. One UPDATE, so a notification arriving meanwhile is either marked or
    left unread, never half-done."""
    result = await session.execute(
        update(Notification)
        .where(
            Notification.user_id == user.id,
            Notification.company_id == user.company_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def mark_read(
    session: AsyncSession, user: User, notification_id: str, now: datetime
) -> Notification:
    """Mark one notification read. Idempotent: reading it again keeps the first time.

    Raises:
        NotFoundError: unknown id, or a notification of another user or company.
    """
    row = await get_notification(session, user.id, user.company_id, notification_id)
    if row.read_at is None:
        row.read_at = now
        await session.flush()
    return row


async def delete_notification(session: AsyncSession, user: User, notification_id: str) -> None:
    """Delete one notification for good (an urgent one is then never e-mailed).

    Raises:
        NotFoundError: unknown id, or a notification of another user or company.
    """
    row = await get_notification(session, user.id, user.company_id, notification_id)
    await session.delete(row)
