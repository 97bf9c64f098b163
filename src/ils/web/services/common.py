"""Small pieces every service needs: field 422s, times, recipients, lookups.

A 422 for an id in the body is raised as :class:`~ils.errors.InvalidFieldError`, which
``ils.web.errors`` turns into exactly the shape of a schema error (``{"field",
"message"}``): a client cannot tell, and need not care, whether the rule lives in the
schema or in a lookup, and services stay free of the web framework. Like every other
error it rolls the request's transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock, utc_now
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.marketplace import require_connection
from ils.errors import InvalidFieldError


def field_error(field: str, message: str) -> InvalidFieldError:
    """A 422 naming body field ``field`` (dotted for nested ones: ``lines.0.product_id``).

    The message states the rule; like every message of the API it never repeats the
    value sent.
    """
    return InvalidFieldError(field, message)


def query_error(field: str, message: str) -> InvalidFieldError:
    """A 422 naming query parameter ``field`` (a schema error names it the same way,
    without saying it came from the query)."""
    return InvalidFieldError(field, message)


def now_utc(clock: Clock) -> datetime:
    """The app clock's time as an aware UTC datetime (tests move the clock, not sleep)."""
    return utc_now(clock)


async def active_company(
    session: AsyncSession, company_id: str, kinds: Iterable[CompanyKind], *, field: str, rule: str
) -> Company:
    """The active company ``company_id`` of one of ``kinds``, else a 422 on ``field``.

    Unknown, inactive and wrong-kind companies answer alike, so the error does not tell
    which companies exist.
    """
    company = await session.get(Company, company_id)
    if company is None or not company.is_active or company.kind not in frozenset(kinds):
        raise field_error(field, rule)
    return company


async def trading_partner(
    session: AsyncSession, company_id: str, partner_id: str, kind: CompanyKind, *, field: str
) -> Company:
    """The company ``company_id`` orders from: active, of ``kind``, and connected.

    A practice's lab and a lab's supplier pass the same two checks before anything is
    written, each a 422 on ``field``: an active company of that kind (else "must be an
    active lab"), then an accepted marketplace connection between the two.
    """
    partner = await active_company(
        session, partner_id, [kind], field=field, rule=f"must be an active {kind.value}"
    )
    await require_connection(session, company_id, partner, field=field)
    return partner


async def active_user_ids(
    session: AsyncSession, company_id: str, roles: Iterable[Role] | None = None
) -> list[str]:
    """Ids of the company's active users (of ``roles`` when given): notification
    recipients. Ordered, so the jobs queued for one event come out in a stable order."""
    query = select(User.id).where(User.company_id == company_id, User.is_active.is_(True))
    if roles is not None:
        query = query.where(User.role.in_([role.value for role in roles]))
    return list((await session.scalars(query.order_by(User.email))).all())
