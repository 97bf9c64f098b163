"""Read model of sign-in: the account behind an e-mail address and its company.

Deliberately unscoped (nobody is signed in yet): the caller must answer every miss
the same way, so these reads return ``None`` rather than raise, leaving that choice,
and the timing that goes with it, to the sign-in.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, User


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user whose e-mail is ``email`` once trimmed and lower-cased (as stored)."""
    user: User | None = await session.scalar(
        select(User).where(User.email == email.strip().lower())
    )
    return user


async def company_of(session: AsyncSession, user: User) -> Company | None:
    """The user's company (``None`` only if the row is gone)."""
    return await session.get(Company, user.company_id)
