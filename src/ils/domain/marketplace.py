"""Marketplace connections: a company asks another to work together, the other decides.

One row per ordered pair (requester, target), unique, so asking twice is a conflict
rather than a duplicate. Whether a reverse request may coexist is the API's call.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.companies import Company
from ils.domain.types import ID_LENGTH, CreatedAtMixin, IdMixin, StrEnumType, UtcDateTime


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

    requester_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("companies.id"))
    target_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("companies.id"))
    status: Mapped[ConnectionStatus] = mapped_column(
        StrEnumType(ConnectionStatus, 16), default=ConnectionStatus.PENDING
    )
    message: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id"), index=True
    )
    decided_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id"), index=True
    )
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    requester: Mapped[Company] = relationship(foreign_keys=[requester_id])
    target: Mapped[Company] = relationship(foreign_keys=[target_id])
