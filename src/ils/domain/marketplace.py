"""Marketplace connections: a company asks another to work together, the other decides.

One row per ordered pair (requester, target), unique, so asking twice is a conflict
rather than a duplicate. Whether a reverse request may coexist is the API's call.

An accepted connection is what lets two companies trade: a practice orders only from
a lab it is connected to, a lab sends purchase orders only to a connected supplier
(:func:`require_connection`). Without it anyone could push a patient's prescription,
or an e-mailed purchase order, to any company on the platform.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Index,
    Text,
    UniqueConstraint,
    and_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.companies import Company
from ils.domain.types import CreatedAtMixin, IdMixin, StrEnumType, UtcDateTime, foreign_id
from ils.errors import InvalidFieldError


class ConnectionStatus(StrEnum):
    """Where a connection request stands."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Connection(IdMixin, CreatedAtMixin, Base):
    """A request from ``requester_id`` to ``target_id``, and its decision.

    Both companies see the row; the requester's id doubles as the owning company, and
    ``ix_connections_target_status`` serves the target's inbox of pending requests.
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("requester_id", "target_id", name="uq_connections_requester_target"),
        Index("ix_connections_target_status", "target_id", "status"),
        CheckConstraint("requester_id <> target_id", name="not_self"),
    )

    requester_id: Mapped[str] = foreign_id("companies.id")
    target_id: Mapped[str] = foreign_id("companies.id")
    status: Mapped[ConnectionStatus] = mapped_column(
        StrEnumType(ConnectionStatus, 16), default=ConnectionStatus.PENDING
    )
    message: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = foreign_id("users.id", index=True)
    decided_by: Mapped[str | None] = foreign_id("users.id", index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    requester: Mapped[Company] = relationship(foreign_keys=[requester_id])
    target: Mapped[Company] = relationship(foreign_keys=[target_id])


async def connected(session: AsyncSession, first_id: str, second_id: str) -> bool:
    """Whether the two companies have an accepted connection, whichever of them asked."""
    found = await session.scalar(
        select(Connection.id)
        .where(
            Connection.status == ConnectionStatus.ACCEPTED,
            or_(
                and_(Connection.requester_id == first_id, Connection.target_id == second_id),
                and_(Connection.requester_id == second_id, Connection.target_id == first_id),
            ),
        )
        .limit(1)
    )
    return found is not None


async def require_connection(
    session: AsyncSession, company_id: str, partner: Company, *, field: str
) -> None:
    """Refuse trade between ``company_id`` and ``partner`` unless they are connected.

    A pending or rejected request is no consent: only the partner accepting (or the
    partner's own request, accepted by this company) opens the way for orders that
    carry patient data or go out by e-mail in the partner's name.

    Raises:
        InvalidFieldError: no accepted connection (422 on ``field``, naming the
            partner, whose name the caller already knows from the marketplace).
    """
    if not await connected(session, company_id, partner.id):
        raise InvalidFieldError(field, f"no accepted marketplace connection with {partner.name}")
