"""Sign-in throttling: failed attempts per account and per client address, kept in the
app database so every web process and machine sees the same counts.

Why it works this way:

* The account is the normalised e-mail, whether or not a user has it: an unknown
  address is throttled, delayed and locked exactly like a real one, so the answers
  never tell which accounts exist.
* After ``free_attempts`` failures each further one makes the next attempt wait twice
  as long as the one before; failure ``lock_after`` locks the key for the lock
  duration. An attempt that comes too early is refused before any password is
  checked, so it costs the server nothing and teaches the client nothing.
* The account's row is read ``FOR UPDATE`` (PostgreSQL; SQLite's write transaction
  already serialises), so parallel guesses at one account are counted one after the
  other and cannot all pass the check together. The address row is only incremented
  atomically: locking it would queue every sign-in of an office behind one NAT.
* The password is checked outside that transaction: a sign-in first reads whether the
  attempt would be refused (:func:`peek`) and whose hash to check, checks it, and only
  then writes, where :func:`check` decides. On SQLite a write transaction holds the
  database's only write lock, and argon2 takes tens of milliseconds: held through it,
  every sign-in stopped every other write of the platform. An attempt that
  :func:`check` refuses is refused whatever its password was, so guesses made in
  parallel still cannot all be answered.
* Counts live in the request's own transaction: the sign-in commits the failure
  it answers with, and a lapsed lock is cleared with its audit entry.
* A lock and its end (lapsed, or lifted by an admin) are written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    case,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ils.db.engine import Base, session_factory
from ils.domain.account_queries import user_by_email
from ils.domain.audit import AuditEntry
from ils.domain.types import EMAIL_LENGTH

#: Audit actions of this module.
LOCK_ACTION: Final = "sign-in-lock"
UNLOCK_ACTION: Final = "sign-in-unlock"
#: Forgotten rows deleted per failure at most (a failure costs the same whatever piled up).
PURGE_BATCH: Final = 100


class ThrottleScope(StrEnum):
    """What a row counts failures of."""

    ACCOUNT = "account"
    ADDRESS = "address"


class SignInThrottle(Base):
    """The failures of one account or one client address since its last reset."""

    __tablename__ = "sign_in_throttles"
    __table_args__ = (Index("ix_sign_in_throttles_last_failure", "last_failure_at_ms"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The normalised e-mail, or the client address.
    subject: Mapped[str] = mapped_column(String(EMAIL_LENGTH), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: Attempts before this time (epoch ms) are refused; ``None``: no delay.
    next_attempt_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    locked_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_failure_at_ms: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """The numbers of one scope (from ``SignInSettings``, in milliseconds)."""

    free_attempts: int
    lock_after: int
    base_delay_ms: int
    max_delay_ms: int
    lock_ms: int

    def delay_after(self, failures: int) -> int:
        """How long the next attempt waits after ``failures`` failures (0: no wait)."""
        if failures <= self.free_attempts:
            return 0
        doublings = min(failures - self.free_attempts - 1, 40)
        return min(self.base_delay_ms << doublings, self.max_delay_ms)


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    """The rules of both scopes."""

    account: ThrottleRule
    address: ThrottleRule

    def of(self, scope: ThrottleScope) -> ThrottleRule:
        return self.account if scope is ThrottleScope.ACCOUNT else self.address


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt is refused now, and for how long."""

    retry_after_ms: int
    locked: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt: who it is for, where it comes from, when."""

    email: str
    address: str | None
    now_ms: int

    def throttled(self) -> list[tuple[ThrottleScope, str]]:
        """The rows this attempt counts against (no address: the account only)."""
        keys = [(ThrottleScope.ACCOUNT, self.email)]
        if self.address:
            keys.append((ThrottleScope.ADDRESS, self.address[:EMAIL_LENGTH]))
        return keys


def normalise_email(email: str) -> str:
    """The account key: trimmed and lower-cased, as ``users.email`` is stored."""
    return email.strip().lower()[:EMAIL_LENGTH]


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(SignInThrottle)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _audit(
    session: AsyncSession,
    action: str,
    now_ms: int,
    scope: ThrottleScope,
    subject: str,
    *,
    company_id: str = "",
    actor: tuple[str, str] = ("", ""),
    ip: str | None = None,
    **detail: Any,
) -> None:
    """One audit row; ``actor`` is ``(user_id, e-mail)`` of who acted, empty for the
    system. An account's rows go to its company's log (unknown ones: the platform's)."""
    user_id, user_email = actor
    session.add(
        AuditEntry(
            at=datetime.fromtimestamp(now_ms / 1000, UTC),
            user_id=user_id,
            user_email=user_email or (subject if scope is ThrottleScope.ACCOUNT else ""),
            company_id=company_id,
            action=action,
            queue="",
            job_id=None,
            detail={"scope": scope.value, "subject": subject, **detail},
            ip=ip[:64] if ip else None,
        )
    )


def _row_refusal(row: SignInThrottle, now_ms: int) -> Refusal | None:
    """What ``row`` refuses at ``now_ms`` (a lapsed lock refuses nothing)."""
    if row.locked_until_ms is not None and row.locked_until_ms > now_ms:
        return Refusal(row.locked_until_ms - now_ms, locked=True)
    delay_until = row.next_attempt_at_ms
    if row.locked_until_ms is None and delay_until is not None and delay_until > now_ms:
        return Refusal(delay_until - now_ms, locked=False)
    return None


def _combined(refusals: list[Refusal]) -> Refusal | None:
    if not refusals:
        return None
    locked = any(refusal.locked for refusal in refusals)
    return Refusal(max(refusal.retry_after_ms for refusal in refusals), locked=locked)


def _row_query(scope: ThrottleScope, subject: str) -> Any:
    return select(SignInThrottle).where(
        SignInThrottle.scope == scope.value, SignInThrottle.subject == subject
    )


async def peek(session: AsyncSession, attempt: Attempt) -> Refusal | None:
    """What :func:`check` would answer now, read without writing or locking: lets a
    sign-in refuse an early attempt, or check the password, before its write
    transaction (module docstring). Only :func:`check` decides."""
    refusals = []
    for scope, subject in attempt.throttled():
        row = (await session.scalars(_row_query(scope, subject))).first()
        if row is not None and (refusal := _row_refusal(row, attempt.now_ms)) is not None:
            refusals.append(refusal)
    return _combined(refusals)


async def check(session: AsyncSession, attempt: Attempt) -> Refusal | None:
    """Whether ``attempt`` may be verified now; ``None`` when it may.

    Takes the account row's lock for the rest of the transaction (see the module
    docstring) and clears locks that have lapsed, auditing their end.
    """
    await session.execute(
        _insert(session)
        .values(
            scope=ThrottleScope.ACCOUNT.value,
            subject=attempt.email,
            failures=0,
            last_failure_at_ms=attempt.now_ms,
        )
        .on_conflict_do_nothing(index_elements=["scope", "subject"])
    )
    refusals = []
    for scope, subject in attempt.throttled():
        query = _row_query(scope, subject)
        if scope is ThrottleScope.ACCOUNT:
            query = query.with_for_update()
        row = (await session.scalars(query.execution_options(populate_existing=True))).first()
        if row is None:
            continue
        now = attempt.now_ms
        if row.locked_until_ms is not None and row.locked_until_ms <= now:
            row.locked_until_ms = None
            row.next_attempt_at_ms = None
            row.failures = 0
            _audit(session, UNLOCK_ACTION, now, scope, subject, by="expiry")
        elif (refusal := _row_refusal(row, now)) is not None:
            refusals.append(refusal)
    return _combined(refusals)


async def record_failure(
    session: AsyncSession, rules: ThrottleRules, attempt: Attempt, company_id: str = ""
) -> list[ThrottleScope]:
    """Count a failed attempt against its account and address; returns the scopes it
    locked (each audited). Also purges rows nobody needs any more."""
    now = attempt.now_ms
    locked = []
    for scope, subject in attempt.throttled():
        rule = rules.of(scope)
        forgotten = SignInThrottle.last_failure_at_ms < now - rule.lock_ms
        failures = await session.scalar(
            _insert(session)
            .values(scope=scope.value, subject=subject, failures=1, last_failure_at_ms=now)
            .on_conflict_do_update(
                index_elements=["scope", "subject"],
                set_={
                    "failures": case((forgotten, 1), else_=SignInThrottle.failures + 1),
                    "last_failure_at_ms": now,
                },
            )
            .returning(SignInThrottle.failures)
        )
        count = int(failures or 1)
        values: dict[str, int | None] = {"next_attempt_at_ms": None, "locked_until_ms": None}
        if count >= rule.lock_after:
            values["locked_until_ms"] = now + rule.lock_ms
            locked.append(scope)
            _audit(
                session,
                LOCK_ACTION,
                now,
                scope,
                subject,
                company_id=company_id if scope is ThrottleScope.ACCOUNT else "",
                ip=attempt.address,
                failures=count,
                until=_iso(now + rule.lock_ms),
            )
        elif delay := rule.delay_after(count):
            values["next_attempt_at_ms"] = now + delay
        await session.execute(
            update(SignInThrottle)
            .where(SignInThrottle.scope == scope.value, SignInThrottle.subject == subject)
            .values(**values)
        )
    await _purge(session, rules, now)
    return locked


async def _purge(session: AsyncSession, rules: ThrottleRules, now_ms: int) -> None:
    """Delete some rows whose failures are forgotten and which hold no lock. Rows
    another sign-in has locked are skipped, never waited for: two requests purging
    each other's rows could otherwise deadlock."""
    horizon = now_ms - max(rules.account.lock_ms, rules.address.lock_ms)
    stale = (
        select(SignInThrottle.scope, SignInThrottle.subject)
        .where(
            SignInThrottle.last_failure_at_ms < horizon,
            SignInThrottle.locked_until_ms.is_(None) | (SignInThrottle.locked_until_ms < now_ms),
        )
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    keys = [tuple(key) for key in (await session.execute(stale)).all()]
    if keys:
        await session.execute(
            delete(SignInThrottle).where(
                tuple_(SignInThrottle.scope, SignInThrottle.subject).in_(keys)
            )
        )


async def record_success(session: AsyncSession, email: str) -> None:
    """A successful sign-in starts the account afresh (its address keeps its count:
    one good password must not wash out a spray of guesses from there)."""
    await session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.scope == ThrottleScope.ACCOUNT.value,
            SignInThrottle.subject == normalise_email(email),
        )
    )


async def unlock(
    session: AsyncSession,
    scope: ThrottleScope,
    subject: str,
    now_ms: int,
    *,
    actor: tuple[str, str],
    company_id: str = "",
    ip: str | None = None,
) -> bool:
    """Lift the lock and forget the failures of one account or address, audited as
    done by ``actor``; whether there was anything to lift."""
    key = normalise_email(subject) if scope is ThrottleScope.ACCOUNT else subject
    row = await session.get(SignInThrottle, (scope.value, key))
    if row is None or (row.failures == 0 and row.locked_until_ms is None):
        return False
    was_locked = row.locked_until_ms is not None and row.locked_until_ms > now_ms
    await session.delete(row)
    _audit(
        session,
        UNLOCK_ACTION,
        now_ms,
        scope,
        key,
        company_id=company_id,
        actor=actor,
        ip=ip,
        by="admin",
        was_locked=was_locked,
        failures=row.failures,
    )
    return True


#: Who the command line acts as in the audit log.
CLI_ACTOR: Final = ("", "ils unlock-sign-in")


async def unlock_account(
    engine: AsyncEngine, email: str, now_ms: int, actor: tuple[str, str] = CLI_ACTOR
) -> bool:
    """:func:`unlock` of an account by its e-mail in a transaction of its own, audited
    in its company's log (the platform's for an e-mail nobody has): the command
    line's way in (``ils unlock-sign-in``)."""
    async with session_factory(engine)() as session, session.begin():
        user = await user_by_email(session, email)
        company_id = user.company_id if user is not None else ""
        return await unlock(
            session, ThrottleScope.ACCOUNT, email, now_ms, actor=actor, company_id=company_id
        )
