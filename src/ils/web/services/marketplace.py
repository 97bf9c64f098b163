"""Marketplace use cases: ask a company to connect, answer, list.

There is at most one live link between two companies, whichever asked: a request
while one is pending or accepted in either direction answers 409. A rejected request
may be asked again; the same row is reopened (the pair is unique in the table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import MANAGER_ROLES, Company, CompanyKind, User
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.scoping import get_scoped
from ils.errors import ConflictError, ForbiddenError
from ils.jobs.helpers import JobHelpers
from ils.jobs.job_types import MarketplaceAction
from ils.web.schemas.marketplace import CompanyRef, ConnectionCreate, ConnectionOut, Direction
from ils.web.services.common import active_company, active_user_ids, field_error

LIVE: Final = frozenset({ConnectionStatus.PENDING, ConnectionStatus.ACCEPTED})
ALREADY_LINKED: Final = "a pending or accepted connection with this company exists"


async def _notify_managers(
    session: AsyncSession,
    helpers: JobHelpers,
    company_id: str,
    connection: Connection,
    action: MarketplaceAction,
    company_name: str,
) -> None:
    """A marketplace notification to each active admin/company_admin of the company."""
    for recipient in await active_user_ids(session, company_id, MANAGER_ROLES):
        await helpers.queue_marketplace_notification(
            recipient, connection.id, action, company_name, session=session
        )


async def request_connection(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    requester: Company,
    body: ConnectionCreate,
    now: datetime,
) -> tuple[Connection, Company]:
    """Ask ``body.target_id`` to connect; queue the e-mail and the target's notifications.

    Returns:
        The connection and the target company.

    Raises:
        InvalidFieldError: the target is this company, unknown or inactive (422).
        ConflictError: a live connection exists in either direction (409).
    """
    if body.target_id == requester.id:
        raise field_error("target_id", "must be another company")
    target = await active_company(
        session, body.target_id, CompanyKind, field="target_id", rule="must be an active company"
    )
    pair = await session.scalars(
        select(Connection)
        .where(
            or_(
                and_(Connection.requester_id == requester.id, Connection.target_id == target.id),
                and_(Connection.requester_id == target.id, Connection.target_id == requester.id),
            )
        )
        .with_for_update()
    )
    existing = list(pair.all())
    if any(row.status in LIVE for row in existing):
        raise ConflictError(ALREADY_LINKED)
    connection = next((row for row in existing if row.requester_id == requester.id), None)
    if connection is None:
        connection = Connection(requester_id=requester.id, target_id=target.id)
        session.add(connection)
    connection.status = ConnectionStatus.PENDING
    connection.message = body.message
    connection.requested_by = user.id
    connection.created_at = now
    connection.decided_by = None
    connection.decided_at = None
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same request raced in from another session
        raise ConflictError(ALREADY_LINKED) from None
    await helpers.queue_marketplace_connection_email(
        connection.id, requester.id, target.id, session=session
    )
    await _notify_managers(session, helpers, target.id, connection, "request", requester.name)
    return connection, target


async def decide(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    company: Company,
    connection_id: str,
    accept: bool,
    now: datetime,
) -> tuple[Connection, Company]:
    """Accept or reject a pending request made to ``company``; tell the requester.

    Returns:
        The connection and the requester company.

    Raises:
        NotFoundError: a connection of other companies (404).
        ForbiddenError: the requester (403): only the company asked decides.
        ConflictError: the request is no longer pending (409).
    """
    connection = await get_scoped(
        session,
        Connection,
        connection_id,
        company.id,
        owners=("requester_id", "target_id"),
        for_update=True,
    )
    if connection.target_id != company.id:
        raise ForbiddenError()  # only the company asked decides
    if connection.status != ConnectionStatus.PENDING:
        raise ConflictError(f"the request is already {connection.status.value}")
    connection.status = ConnectionStatus.ACCEPTED if accept else ConnectionStatus.REJECTED
    connection.decided_by = user.id
    connection.decided_at = now
    await session.flush()
    action: MarketplaceAction = "accepted" if accept else "rejected"
    await _notify_managers(
        session, helpers, connection.requester_id, connection, action, company.name
    )
    requester = await session.get(Company, connection.requester_id)
    assert requester is not None  # a foreign key
    return connection, requester


async def list_connections(
    session: AsyncSession, company: Company, status: ConnectionStatus | None
) -> list[ConnectionOut]:
    """The company's connections in both directions, newest first."""
    query = select(Connection).where(
        or_(Connection.requester_id == company.id, Connection.target_id == company.id)
    )
    if status is not None:
        query = query.where(Connection.status == status)
    rows = list((await session.scalars(query.order_by(Connection.created_at.desc()))).all())
    other_ids = {
        row.target_id if row.requester_id == company.id else row.requester_id for row in rows
    }
    others = {
        other.id: other
        for other in await session.scalars(select(Company).where(Company.id.in_(other_ids)))
    }
    return [
        connection_out(
            row,
            company.id,
            others[row.target_id if row.requester_id == company.id else row.requester_id],
        )
        for row in rows
    ]


def connection_out(connection: Connection, viewer_id: str, other: Company) -> ConnectionOut:
    """The connection as ``viewer_id``'s company sees it."""
    outgoing = connection.requester_id == viewer_id
    return ConnectionOut.read_from(
        connection,
        direction=Direction.OUTGOING if outgoing else Direction.INCOMING,
        other=CompanyRef.model_validate(other),
    )
