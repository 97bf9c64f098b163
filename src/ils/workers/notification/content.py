"""What each notification job stores, after checking who it is for.

A payload names a user and, for order and marketplace notifications, the record the
notification is about. Before anything is stored the worker checks, from the
database, that the user exists and is active and that the record is one the user's
company takes part in (the order's practice or lab, the connection's requester or
target): a job with a stale or forged id fails for good instead of showing one
company's order to another's staff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, User
from ils.domain.content import NotificationPriority
from ils.domain.marketplace import Connection
from ils.domain.orders import Order
from ils.errors import PermanentJobError
from ils.jobs.payloads.notification import (
    AiInsightNotification,
    CompanyOrderNotification,
    MarketplaceNotification,
    OrderNotification,
    SystemNotification,
)

MARKETPLACE_TITLES: Final[dict[str, str]] = {
    "request": "Connection request from {company}",
    "accepted": "{company} accepted your connection request",
    "rejected": "{company} declined your connection request",
}

INSIGHT_TITLES: Final[dict[str, str]] = {
    "briefing": "Daily briefing",
    "forecast": "Demand forecast",
    "anomaly": "Anomaly detected",
    "recommendation": "Recommendation",
}


class NotificationTargetError(PermanentJobError):
    """The user or the record of a notification job is missing or not theirs."""


@dataclass(frozen=True, slots=True)
class Draft:
    """One notification, ready to store for ``user_id`` of ``company_id``."""

    company_id: str
    user_id: str
    kind: str
    priority: NotificationPriority
    title: str
    message: str
    link: str | None


NoticeT = TypeVar(
    "NoticeT",
    bound=SystemNotification | OrderNotification | AiInsightNotification | MarketplaceNotification,
)
#: What one single-user notification job type stores for its payload (the drafters
#: below); the handler of that type passes its own, so each gets its own payload.
Drafter = Callable[[AsyncSession, NoticeT], Awaitable[Draft]]


async def active_user(session: AsyncSession, user_id: str) -> User:
    """The user a notification is for; fails the job if missing or deactivated."""
    user = await session.scalar(select(User).where(User.id == user_id))
    if user is None or not user.is_active:
        raise NotificationTargetError(f"user {user_id} does not exist or is not active")
    return user


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# One drafter per job type, each taking its own payload: the handler of that type
# passes its drafter to the worker's ``store``. Each raises NotificationTargetError
# when the user, order or connection is missing, or the user's company has no part in
# the order or connection.


async def system_draft(session: AsyncSession, payload: SystemNotification) -> Draft:
    """A ``system-notification``: the payload's texts, at the payload's priority."""
    user = await active_user(session, payload.user_id)
    return Draft(
        user.company_id,
        user.id,
        "system",
        NotificationPriority(payload.priority),
        payload.title,
        payload.message,
        payload.action_url,
    )


async def _company_order(
    session: AsyncSession, order_id: str, company_id: str, whose: str
) -> Order:
    """Order ``order_id`` if ``company_id`` is its practice or lab; else the job fails,
    saying ``whose`` order it is not (``company <id>``, ``user <id>'s company``)."""
    order = await session.scalar(select(Order).where(Order.id == order_id))
    if order is None or company_id not in (order.company_id, order.lab_id):
        raise NotificationTargetError(f"order {order_id} is not an order of {whose}")
    return order


def _order_notice(order: Order, company_id: str, user_id: str, status: str, message: str) -> Draft:
    """What an order notification says to one user, whether the job named the user
    or the whole company: the order's number and new status, linked."""
    return Draft(
        company_id,
        user_id,
        "order",
        NotificationPriority.HIGH,
        _clip(f"Order {order.number}: {status.replace('_', ' ')}", 200),
        message,
        f"/orders/{order.id}",
    )


async def order_draft(session: AsyncSession, payload: OrderNotification) -> Draft:
    """An ``order-notification``: the order's number and new status, linked."""
    user = await active_user(session, payload.user_id)
    whose = f"user {user.id}'s company"
    order = await _company_order(session, payload.order_id, user.company_id, whose)
    return _order_notice(order, user.company_id, user.id, payload.status, payload.message)


async def company_order_drafts(
    session: AsyncSession, payload: CompanyOrderNotification
) -> list[Draft]:
    """A ``company-order-notification``: the ``order-notification`` draft for each
    user of the company active now (who joined or left since the event decides, not
    who was there when it was queued); none for a company without active users."""
    company_id = payload.company_id
    order = await _company_order(session, payload.order_id, company_id, f"company {company_id}")
    users = await session.scalars(
        select(User.id)
        .where(User.company_id == company_id, User.is_active.is_(True))
        .order_by(User.id)
    )
    return [
        _order_notice(order, company_id, user_id, payload.status, payload.message)
        for user_id in users
    ]


async def ai_insight_draft(session: AsyncSession, payload: AiInsightNotification) -> Draft:
    """An ``ai-insight-notification``: the insight's kind and title, and its summary."""
    user = await active_user(session, payload.user_id)
    return Draft(
        user.company_id,
        user.id,
        "ai-insight",
        NotificationPriority.MEDIUM,
        _clip(f"{INSIGHT_TITLES[payload.insight_type]}: {payload.title}", 200),
        payload.summary,
        payload.detail_url,
    )


async def marketplace_draft(session: AsyncSession, payload: MarketplaceNotification) -> Draft:
    """A ``marketplace-notification``: who asked or answered, named as stored now."""
    user = await active_user(session, payload.user_id)
    connection = await session.scalar(
        select(Connection).where(Connection.id == payload.connection_id)
    )
    if connection is None or user.company_id not in (
        connection.requester_id,
        connection.target_id,
    ):
        raise NotificationTargetError(
            f"connection {payload.connection_id} does not involve user {user.id}'s company"
        )
    other_id = (
        connection.target_id
        if user.company_id == connection.requester_id
        else connection.requester_id
    )
    # The name is the other company's as stored now, not as the payload says.
    other = await session.scalar(select(Company.name).where(Company.id == other_id))
    company = other or payload.company_name
    title = MARKETPLACE_TITLES[payload.action].format(company=company)
    return Draft(
        user.company_id,
        user.id,
        "marketplace",
        NotificationPriority.HIGH,
        _clip(title, 200),
        _marketplace_message(payload.action, company),
        f"/marketplace/connections/{connection.id}",
    )


def _marketplace_message(action: str, company: str) -> str:
    if action == "request":
        return f"{company} would like to connect with your company on the marketplace."
    if action == "accepted":
        return f"You are now connected with {company} on the marketplace."
    return f"{company} declined to connect on the marketplace."
