"""Company scoping of single-record lookups, without the web framework.

Every record of the platform belongs to one or two companies (an order to its
practice and its lab, a connection to both sides). A lookup by id always filters on
the asking company, and a record of another company answers exactly like a missing
one (:class:`~ils.errors.NotFoundError`), so ids cannot be used to probe what other
companies hold. Services and routers share this one lookup (``ils.web.deps.scoped_get``
is this function under its older name); the web layer's error handlers turn the error
into its 404, the same body as a route's own ``not_found()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import Base
from ils.errors import NotFoundError

ModelT = TypeVar("ModelT", bound=Base)


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
    mapper = sa_inspect(model)
    columns: list[Any] = []
    for name in owners:
        if name not in mapper.columns:
            raise ValueError(f"{model.__name__} has no column {name!r}")
        columns.append(mapper.columns[name])
    primary_key = mapper.primary_key[0]
    query = select(model).where(primary_key == record_id, or_(*(c == company_id for c in columns)))
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise NotFoundError(model.__name__)
    return row
