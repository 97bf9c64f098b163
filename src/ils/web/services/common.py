"""Small pieces every service needs: body-field 422s, times, recipients, lookups.

A 422 for an id in the body is raised as FastAPI's ``RequestValidationError`` so it
leaves the API in exactly the shape of a schema error (``{"field", "message"}``): a
client cannot tell, and need not care, whether the rule lives in the schema or in a
lookup. Like every other error it rolls the request's transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock, utc_now
from ils.domain.companies import Company, CompanyKind, Role, User


def field_error(field: str, message: str) -> RequestValidationError:
    """A 422 naming body field ``field`` (dotted for nested ones: ``lines.0.product_id``).

    The message states the rule; like every message of the API it never repeats the
    value sent.
    """
    loc: list[str | int] = ["body"]
    for part in field.split("."):
        loc.append(int(part) if part.isdigit() else part)
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message}])


def query_error(field: str, message: str) -> RequestValidationError:
    """A 422 naming query parameter ``field``."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message}]
    )


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


async def active_user_ids(
    session: AsyncSession, company_id: str, roles: Iterable[Role] | None = None
) -> list[str]:
    """Ids of the company's active users (of ``roles`` when given): notification
    recipients. Ordered, so the jobs queued for one event come out in a stable order."""
    query = select(User.id).where(User.company_id == company_id, User.is_active.is_(True))
    if roles is not None:
        query = query.where(User.role.in_([role.value for role in roles]))
    return list((await session.scalars(query.order_by(User.email))).all())
