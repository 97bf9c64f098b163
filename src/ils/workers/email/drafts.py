"""What an e-mail job turns into before rendering: drafts, recipients, branding.

A job loads its records and returns :class:`MailDraft` objects, one per recipient,
or a :class:`Skip` when there is nothing left to say (a connection request decided
before its e-mail went out). Missing records and unusable recipients raise
:class:`~ils.errors.MailDataMissingError`, which fails the job at once: retrying does
not bring a deleted order back. Reasons name records by id, never by a person's name
or address, since they end up in the monitoring API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import MANAGER_ROLES, Company, User
from ils.errors import MailDataMissingError

DEFAULT_BRAND_COLOR: Final = "#1f4e79"
_HEX_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class Brand:
    """The company an e-mail speaks for, as its header and footer show it."""

    name: str
    logo_text: str
    color: str
    address: tuple[str, ...]
    email: str | None
    phone: str | None

    @classmethod
    def of(cls, company: Company) -> Brand:
        """The company's branding; a colour that is not ``#rrggbb`` falls back to ours,
        since it goes into a ``style`` attribute."""
        color = company.primary_color or ""
        place = " ".join(part for part in (company.city, company.postcode) if part)
        return cls(
            name=company.name,
            logo_text=company.logo_text or company.name,
            color=color if _HEX_COLOR.fullmatch(color) else DEFAULT_BRAND_COLOR,
            address=tuple(
                part for part in (company.address_line1, company.address_line2, place) if part
            ),
            email=company.email,
            phone=company.phone,
        )


@dataclass(frozen=True, slots=True)
class Recipient:
    """One addressee. ``slot`` names them stably across retries (``user:<id>`` or
    ``company:<id>``), so the message keeps its Message-ID even if the address is
    edited between two attempts."""

    slot: str
    address: str
    name: str | None
    company_id: str | None


@dataclass(frozen=True, slots=True)
class MailDraft:
    """One message before rendering: who, on whose behalf, which template, what data."""

    recipient: Recipient
    company_id: str
    brand: Brand
    subject: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def reply_to(self) -> str | None:
        """Replies go to the company the e-mail speaks for, not to our no-reply."""
        return self.brand.email


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to send, and why (the job completes with this reason)."""

    reason: str


def drafts_for(
    sender: Company,
    recipients: Iterable[Recipient],
    subject: str,
    template: str,
    context: dict[str, Any],
) -> list[MailDraft]:
    """One draft per recipient, each speaking for ``sender`` (its id and branding).

    Every e-mail that goes out in a company's name is drafted this way, so the
    recipients of one job (a supplier's managers, say) all get the same message.
    """
    brand = Brand.of(sender)
    return [
        MailDraft(recipient, sender.id, brand, subject, template, context)
        for recipient in recipients
    ]


async def user_recipient(session: AsyncSession, user_id: str) -> tuple[User, Recipient]:
    """The active user ``user_id`` as a recipient.

    Raises:
        MailDataMissingError: no such user, deactivated, or without an address.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise MailDataMissingError(f"user {user_id} not found")
    if not user.is_active:
        raise MailDataMissingError(f"user {user_id} is deactivated")
    if not user.email:
        raise MailDataMissingError(f"user {user_id} has no e-mail address")
    return user, Recipient(f"user:{user.id}", user.email, user.name, user.company_id)


async def company_recipients(session: AsyncSession, company: Company) -> list[Recipient]:
    """Where mail for a company goes: its own address, else each active manager.

    Raises:
        MailDataMissingError: the company has neither an address nor an active admin.
    """
    if company.email:
        return [Recipient(f"company:{company.id}", company.email, company.name, company.id)]
    managers = await session.scalars(
        select(User)
        .where(
            User.company_id == company.id,
            User.is_active.is_(True),
            User.role.in_([role.value for role in MANAGER_ROLES]),
        )
        .order_by(User.email)
    )
    found = [
        Recipient(f"user:{user.id}", user.email, user.name, company.id)
        for user in managers
        if user.email
    ]
    if not found:
        raise MailDataMissingError(
            f"company {company.id} has no e-mail address and no active admin to write to"
        )
    return found


async def company(session: AsyncSession, company_id: str, role: str) -> Company:
    """Company ``company_id``; ``role`` (``lab``, ``supplier``...) names it in errors.

    Raises:
        MailDataMissingError: no such company.
    """
    found = await session.get(Company, company_id)
    if found is None:
        raise MailDataMissingError(f"{role} {company_id} not found")
    return found
