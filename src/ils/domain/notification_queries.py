"""Read model of a user's in-app notifications.

A notification is its user's alone, and only while they belong to the company it was
made for: every query filters on both, so anyone else's notification id answers
:class:`~ils.errors.NotFoundError` like an unknown one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import Notification, NotificationPriority
from ils.domain.paging import count_rows, fetch_page
from ils.domain.scoping import user_scoped, user_scoped_getter


@dataclass(frozen=True)
class NotificationFilters:
    """The filters of the notification list; ``None`` leaves a filter out."""

    unread: bool | None = None
    kind: str | None = None
    priority: NotificationPriority | None = None


def mine(user_id: str, company_id: str) -> Select[tuple[Notification]]:
    """The user's notifications in their current company (the scope of every read)."""
    return user_scoped(Notification, user_id, company_id)


#: ``get_notification(session, user_id, company_id, notification_id)``: the user's
#: notification; :class:`~ils.errors.NotFoundError` for an unknown id or a
#: notification of another user or company.
get_notification = user_scoped_getter(Notification)


async def list_notifications(
    session: AsyncSession,
    user_id: str,
    company_id: str,
    filters: NotificationFilters,
    limit: int,
    offset: int,
) -> tuple[list[Notification], int]:
    """A page of the user's notifications, unread first, then newest first, and the
    total."""
    query = mine(user_id, company_id)
    if filters.unread is not None:
        query = query.where(
            Notification.read_at.is_(None) if filters.unread else Notification.read_at.is_not(None)
        )
    if filters.kind is not None:
        query = query.where(Notification.kind == filters.kind)
    if filters.priority is not None:
        query = query.where(Notification.priority == filters.priority)
    order = (
        Notification.read_at.is_not(None),
        Notification.created_at.desc(),
        Notification.id.desc(),
    )
    return await fetch_page(session, query, order, limit, offset)


async def count_unread(session: AsyncSession, user_id: str, company_id: str) -> int:
    """How many of the user's notifications are unread (the badge on the bell)."""
    return await count_rows(
        session, mine(user_id, company_id).where(Notification.read_at.is_(None))
    )
