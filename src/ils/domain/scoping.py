"""Company scoping of single-record lookups, without the web framework.

Every record of the platform belongs to one or two companies (an order to its
practice and its lab, a connection to both sides). A lookup by id always filters on
the asking company, and a record of another company answers exactly like a missing
one (:class:`~ils.errors.NotFoundError`), so ids cannot be used to probe what other
companies hold. Services and routers share this one lookup (``ils.web.deps.scoped_get``
is this function under its older name); the web layer's error handlers turn the error
into its 404, the same body as a route's own ``not_found()``.

A user's own records (notifications, AI conversations) are scoped tighter, to the user
*and* the company they are signed in to: :func:`user_scoped` and
:func:`get_user_scoped` (:func:`user_scoped_getter` binds it to one model). Read
models with a lookup of their own (the newest row of something) end it with
:func:`one_or_not_found`, so a miss answers the same everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import Base
from ils.errors import NotFoundError

ModelT = TypeVar("ModelT", bound=Base)
RowT = TypeVar("RowT")


def _column(model: type[Base], name: str) -> Any:
    """``model``'s column ``name``, looked up by name so one query serves many models.

    Raises:
        ValueError: the model has no such column (a bug in the caller, not a 404).
    """
    columns = sa_inspect(model).columns
    if name not in columns:
        raise ValueError(f"{model.__name__} has no column {name!r}")
    return columns[name]


async def one_or_not_found(session: AsyncSession, query: Select[tuple[RowT]], what: str) -> RowT:
    """The first row of ``query``, already scoped by the caller.

    Raises:
        NotFoundError: ``query`` yields nothing; ``what`` names the kind of record for
            the code that catches it (the client only ever sees ``not found``).
    """
    row = await session.scalar(query)
    if row is None:
        raise NotFoundError(what)
    return row


async def get_scoped(
    session: AsyncSession,
    model: type[ModelT],
    record_id: str,
    company_id: str,
    *,
    owners: Sequence[str] = ("company_id",),
    for_update: bool = False,
) -> ModelT:
    """The ``model`` row with id ``record_id`` that belongs to ``company_id``.

    Args:
        session: The request's session.
        model: A domain model with an ``id`` primary key.
        record_id: The id from the path or body.
        company_id: The signed-in user's company.
        owners: Columns any of which may hold ``company_id``: an order is visible to
            its practice and its lab, ``owners=("company_id", "lab_id")``.
        for_update: Lock the row (``SELECT ... FOR UPDATE`` on PostgreSQL) before a
            read-modify-write such as a status change.

    Raises:
        NotFoundError: for a missing id and for another company's record alike.
        ValueError: ``owners`` names a column the model does not have (a bug).
    """
    columns = [_column(model, name) for name in owners]
    primary_key = sa_inspect(model).primary_key[0]
    query = select(model).where(primary_key == record_id, or_(*(c == company_id for c in columns)))
    if for_update:
        query = query.with_for_update()
    return await one_or_not_found(session, query, model.__name__)


def user_scoped(model: type[ModelT], user_id: str, company_id: str) -> Select[tuple[ModelT]]:
    """The ``model`` rows of ``user_id`` made in ``company_id``: the scope of every read
    of a user's own records, so they stay out of sight once the user moves company.

    Raises:
        ValueError: ``model`` has no ``user_id`` or ``company_id`` column (a bug).
    """
    return select(model).where(
        _column(model, "user_id") == user_id, _column(model, "company_id") == company_id
    )


async def get_user_scoped(
    session: AsyncSession, model: type[ModelT], record_id: str, user_id: str, company_id: str
) -> ModelT:
    """The ``model`` row with id ``record_id`` within :func:`user_scoped`.

    Raises:
        NotFoundError: for a missing id and for another user's or company's row alike.
    """
    primary_key = sa_inspect(model).primary_key[0]
    query = user_scoped(model, user_id, company_id).where(primary_key == record_id)
    return await one_or_not_found(session, query, model.__name__)


#: ``(session, user_id, company_id, record_id)``: the lookup a read model exports.
UserScopedGetter = Callable[[AsyncSession, str, str, str], Awaitable[ModelT]]


def user_scoped_getter(model: type[ModelT]) -> UserScopedGetter[ModelT]:
    """:func:`get_user_scoped` bound to ``model``, with the user before the record id
    as the read models' callers pass them; each read model defines its lookup with it
    instead of repeating the same wrapper."""

    async def get(session: AsyncSession, user_id: str, company_id: str, record_id: str) -> ModelT:
        return await get_user_scoped(session, model, record_id, user_id, company_id)

    return get
