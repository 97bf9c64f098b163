"""Passwords, signed session cookies and server-side sessions.

Why it is built this way:

* Passwords are argon2id hashes (``argon2-cffi``). Hashing and verifying cost a large
  slice of memory and CPU on purpose, so they run in a worker thread and never stall
  the event loop for other requests.
* A sign-in for an e-mail nobody has still verifies a password against a dummy hash,
  so the response time does not tell which e-mails have accounts.
* The cookie carries ``token.signature``: a random token and its HMAC-SHA256 under the
  deployment's secret key (the same on every web server, see ``ils.secret_key``). A
  forged or truncated cookie is refused before any database lookup, and a stolen
  database does not yield working cookies because rows are keyed by ``sha256(token)``,
  never by the token itself. After a key rotation, cookies signed with a previous key
  still verify, so nobody is signed out by it; new ones are signed with the new key.
* CSRF tokens are random per session and kept in its row, not derived from the key:
  they need nothing from the key and survive a rotation as they are.
* Sessions live in ``user_sessions`` so signing out, deactivating a user or deleting a
  session row ends access at once; each carries its own CSRF token.
* Guessing is throttled per account and per address (:func:`throttle_rules`, applied
  by :mod:`ils.domain.sign_in_throttle`): argon2 makes one guess dear, the throttle
  makes many of them slow, then impossible for a while.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.domain.companies import Company, User, UserSession
from ils.domain.sign_in_throttle import ThrottleRule, ThrottleRules
from ils.limit_settings import SignInSettings

#: Name of the HttpOnly cookie holding ``token.signature``.
SESSION_COOKIE = "ils_session"
#: Name of the cookie scripts may read to send the ``X-CSRF-Token`` header.
CSRF_COOKIE = "ils_csrf"
#: Header a state-changing request repeats the session's CSRF token in.
CSRF_HEADER = "X-CSRF-Token"
#: Bytes of randomness in a session token (256 bits).
TOKEN_BYTES = 32
#: Bytes of randomness in a CSRF token; its URL-safe text fits ``csrf_token`` (64).
CSRF_BYTES = 32
#: Longest cookie value worth looking at; anything longer is not ours.
MAX_COOKIE_LENGTH = 256
#: Session keys per read of :meth:`SessionManager.alive`: well inside SQLite's and
#: asyncpg's limits of bound parameters.
SESSIONS_PER_READ = 1_000
# Domain separation: the configured secret key may sign other things later (password
# reset links...), so the cookie key is derived for this purpose only.
_COOKIE_KEY_LABEL = b"ils session cookie v1"


class Passwords:
    """argon2id hashing with the work done in a thread.

    Args:
        hasher: The argon2 parameters; production uses argon2-cffi's defaults (RFC 9106
            low-memory profile). Tests pass a cheap hasher to keep sign-ins fast.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        # Same parameters as real hashes, so an unknown e-mail costs what a known one does.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (with a fresh salt)."""
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``; a malformed hash never matches."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_nobody(self, password: str) -> None:
        """Spend the time of a real verification, for sign-ins of unknown e-mails."""
        await asyncio.to_thread(self._verify, self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: A session's rows with its user and company, where the session is valid at
#: ``now`` (bound per call): unexpired, of an active user of an active company. The
#: one statement of that rule, shared by :meth:`SessionManager.find` and
#: :meth:`SessionManager.alive`.
VALID_SESSIONS = (
    select(UserSession, User, Company)
    .join(User, User.id == UserSession.user_id)
    .join(Company, Company.id == User.company_id)
    .where(
        UserSession.expires_at > bindparam("now"),
        User.is_active.is_(True),
        Company.is_active.is_(True),
    )
)
#: Every authenticated request runs this; built once, not per request.
SESSION_WITH_USER = VALID_SESSIONS.where(UserSession.id == bindparam("session_id"))
#: The ids among ``session_ids`` of sessions still valid.
LIVE_SESSION_IDS = VALID_SESSIONS.with_only_columns(UserSession.id).where(
    UserSession.id.in_(bindparam("session_ids", expanding=True))
)


def session_id_of(token: str) -> str:
    """The ``user_sessions`` primary key of a token: its sha256 in hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _cookie_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("the secret key must not be empty")
    return hmac.new(secret_key.encode(), _COOKIE_KEY_LABEL, hashlib.sha256).digest()


class CookieSigner:
    """Signs session tokens and checks signed cookie values in constant time.

    Args:
        secret_key: Signs new cookies, and verifies.
        previous: Keys of before a rotation: they still verify, never sign.
    """

    def __init__(self, secret_key: str, previous: Sequence[str] = ()) -> None:
        self._key = _cookie_key(secret_key)
        self._verifying = (self._key, *(_cookie_key(key) for key in previous))

    @staticmethod
    def _signature(key: bytes, token: str) -> str:
        return _b64(hmac.new(key, token.encode("ascii"), hashlib.sha256).digest())

    def sign(self, token: str) -> str:
        """The cookie value for ``token``: ``token.signature`` (current key)."""
        return f"{token}.{self._signature(self._key, token)}"

    def unsign(self, value: str) -> str | None:
        """The token of a cookie value, or ``None`` when the signature is wrong."""
        if not value or len(value) > MAX_COOKIE_LENGTH or not value.isascii():
            return None
        token, dot, signature = value.rpartition(".")
        if not dot or not token:
            return None
        for key in self._verifying:
            if hmac.compare_digest(signature, self._signature(key, token)):
                return token
        return None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A session just started: what the response sets as cookies."""

    cookie_value: str
    csrf_token: str
    expires_at: datetime
    row: UserSession


@dataclass(frozen=True, slots=True)
class SessionAuth:
    """A request's valid session with its user and company (all active)."""

    session: UserSession
    user: User
    company: Company


class SessionManager:
    """Starts, finds and ends server-side sessions.

    Args:
        signer: Signs and checks cookie values.
        ttl: How long a session lasts from sign-in (fixed, not sliding: a stolen cookie
            stops working at the latest after ``ttl``).
        clock: Where "now" comes from, so tests expire sessions without sleeping.
    """

    def __init__(self, signer: CookieSigner, ttl: timedelta, clock: Clock) -> None:
        self.signer = signer
        self.ttl = ttl
        self.clock = clock

    def now(self) -> datetime:
        """The current time from the injected clock, aware UTC."""
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)

    async def start(self, db: AsyncSession, user: User, *, ip: str | None) -> IssuedSession:
        """Add a session row for ``user`` (committed with the request) and purge the
        user's expired sessions, so the table does not grow without bound."""
        now = self.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        row = UserSession(
            id=session_id_of(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(CSRF_BYTES),
            created_at=now,
            expires_at=now + self.ttl,
            ip=ip[:45] if ip else None,
        )
        await db.execute(
            delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
        )
        db.add(row)
        await db.flush()
        return IssuedSession(self.signer.sign(token), row.csrf_token, row.expires_at, row)

    async def find(self, db: AsyncSession, cookie_value: str | None) -> SessionAuth | None:
        """The session a cookie stands for, if it is genuine, unexpired and its user and
        company are active; ``None`` otherwise (the caller answers 401 alike)."""
        if not cookie_value:
            return None
        token = self.signer.unsign(cookie_value)
        if token is None:
            return None
        found = (
            await db.execute(
                SESSION_WITH_USER, {"session_id": session_id_of(token), "now": self.now()}
            )
        ).one_or_none()
        if found is None:
            return None
        return SessionAuth(*found._tuple())

    async def alive(self, db: AsyncSession, session_ids: Collection[str]) -> set[str]:
        """Of ``session_ids`` (``user_sessions`` keys), those :meth:`find` would still
        accept: unexpired, of an active user of an active company. One read answers
        for every live stream of a process (``ils.web.live``), instead of one each."""
        now = self.now()
        ids = list(session_ids)
        alive: set[str] = set()
        for start in range(0, len(ids), SESSIONS_PER_READ):
            chunk = ids[start : start + SESSIONS_PER_READ]
            alive.update(await db.scalars(LIVE_SESSION_IDS, {"session_ids": chunk, "now": now}))
        return alive

    async def end(self, db: AsyncSession, session: UserSession) -> None:
        """Delete the session row: the cookie stops working once the request commits."""
        await db.execute(delete(UserSession).where(UserSession.id == session.id))


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token with the header's."""
    if not given or not given.isascii():
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def throttle_rules(settings: SignInSettings) -> ThrottleRules:
    """The sign-in throttle's rules from its settings (seconds become milliseconds)."""

    def ms(seconds: float) -> int:
        return max(int(seconds * 1000), 1)

    def rule(free: int, lock_after: int) -> ThrottleRule:
        return ThrottleRule(
            free_attempts=free,
            lock_after=lock_after,
            base_delay_ms=ms(settings.base_delay_s),
            max_delay_ms=ms(settings.max_delay_s),
            lock_ms=ms(settings.lock_duration_s),
        )

    return ThrottleRules(
        account=rule(settings.free_attempts, settings.lock_after),
        address=rule(settings.address_free_attempts, settings.address_lock_after),
    )


def retry_after(ms: int) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least one."""
    return str(max(math.ceil(ms / 1000), 1))
