"""Companies, the people who sign in for them, and their server-side sessions.

Every other table hangs off ``companies``: a practice (ECP) orders lenses, a lab makes
them, a supplier sells to labs. A user belongs to exactly one company, and every query
of the API is scoped to that company.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.types import (
    EMAIL_LENGTH,
    CreatedAtMixin,
    IdMixin,
    StrEnumType,
    TimestampMixin,
    UtcDateTime,
    foreign_id,
)


class CompanyKind(StrEnum):
    """What a company is; it decides which side of an order or purchase it takes."""

    PRACTICE = "practice"
    LAB = "lab"
    SUPPLIER = "supplier"


class Role(StrEnum):
    """A user's role inside their company (see the roles table of docs/platform.md)."""

    PLATFORM_ADMIN = "platform_admin"
    ADMIN = "admin"
    COMPANY_ADMIN = "company_admin"
    STAFF = "staff"
    LAB_TECH = "lab_tech"


#: Roles that manage their whole company (users, connections, everything else).
MANAGER_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.ADMIN, Role.COMPANY_ADMIN})


class PaperSize(StrEnum):
    """Paper size of the PDFs generated for a company."""

    A4 = "A4"
    LETTER = "Letter"


def zone_named(name: str) -> ZoneInfo:
    """The zone called ``name``; UTC if this machine does not know it, so one bad
    setting cannot break every request or job of that company."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class Company(IdMixin, TimestampMixin, Base):
    """A practice, lab or supplier: the tenant every other record belongs to."""

    __tablename__ = "companies"

    kind: Mapped[CompanyKind] = mapped_column(StrEnumType(CompanyKind, 16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    #: ISO 3166-1 alpha-2 code.
    country: Mapped[str] = mapped_column(String(2), default="GB")
    vat_number: Mapped[str | None] = mapped_column(String(32))
    #: IANA zone; local times (briefings at 08:00, due dates) are computed in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(32))
    #: Branding of generated documents: ``#rrggbb`` and a short text in place of a logo.
    primary_color: Mapped[str | None] = mapped_column(String(7))
    logo_text: Mapped[str | None] = mapped_column(String(64))
    paper_size: Mapped[PaperSize] = mapped_column(StrEnumType(PaperSize, 8), default=PaperSize.A4)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    users: Mapped[list[User]] = relationship(back_populates="company")

    @property
    def zone(self) -> ZoneInfo:
        """The company's time zone (see :func:`zone_named`)."""
        return zone_named(self.time_zone)

    def local_date(self, moment: datetime) -> date:
        """The calendar date at ``moment`` where the company is: invoices, due dates and
        briefings are dated in the company's zone, not the server's."""
        return moment.astimezone(self.zone).date()


class User(IdMixin, TimestampMixin, Base):
    """A person who signs in, always on behalf of one company.

    ``email`` is stored lower-case (a CHECK enforces it) so the unique constraint also
    catches ``Ann@x.com`` against ``ann@x.com``; callers lower-case before lookups.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lower_case"),)

    company_id: Mapped[str] = foreign_id("companies.id", index=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: argon2id hash (``argon2-cffi``), never the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    company: Mapped[Company] = relationship(back_populates="users")
    sessions: Mapped[list[UserSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class UserSession(CreatedAtMixin, Base):
    """A server-side session, so signing out or deactivating a user ends it at once.

    The primary key is the sha256 (hex) of the cookie token: a leaked database does not
    hand out working cookies. Deleting a user deletes their sessions.
    """

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = foreign_id("users.id", ondelete="CASCADE", index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    #: Indexed for the purge of expired sessions.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    #: Client address at sign-in (IPv6 fits in 45 characters).
    ip: Mapped[str | None] = mapped_column(String(45))

    user: Mapped[User] = relationship(back_populates="sessions")
