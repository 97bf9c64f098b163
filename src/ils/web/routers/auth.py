"""Sign-in, sign-out and "who am I" (``/api/auth``).

A successful sign-in sets two cookies: ``ils_session`` (HttpOnly, so scripts and an
XSS payload cannot read it) and ``ils_csrf`` (readable, so the web client can echo it
in ``X-CSRF-Token``). SameSite=Lax keeps the session off cross-site POSTs; the CSRF
header covers what SameSite does not (older browsers, same-site subdomains).

Sign-in is throttled per account and per client address (see
:mod:`ils.domain.sign_in_throttle`): too-early attempts and locked ones answer 429 with
``Retry-After`` before any password is checked, for unknown e-mails exactly as for real
ones. Admins lift a lock with ``POST /api/auth/sign-in-locks/unlock``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ils.domain import sign_in_throttle as throttle
from ils.domain.account_queries import company_of, user_by_email
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.types import EMAIL_LENGTH
from ils.settings import Settings
from ils.web.deps import NOT_ALLOWED, CurrentAuth, ManagerUser, SessionDep, StateDep, not_found
from ils.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    IssuedSession,
    retry_after,
    throttle_rules,
)

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: One message for unknown e-mail, wrong password and inactive account alike.
WRONG_CREDENTIALS = "wrong e-mail or password"
# Longer passwords are refused before hashing: argon2 would take them, but a megabyte
# "password" is a way to burn CPU, not a password.
MAX_PASSWORD_LENGTH = 1024
#: The 429 of an attempt that came before the next allowed time.
TOO_SOON = "too many failed sign-ins; wait before trying again"
#: The 429 of a locked account or address.
LOCKED = "sign-in locked after too many failed attempts; try again later or ask an admin"


class SignInRequest(BaseModel):
    """E-mail and password. The e-mail is not format-checked here: an address that is
    not on file simply fails like a wrong password."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserOut(BaseModel):
    """The signed-in user, as the web client shows them."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    company_id: str
    email: str
    name: str
    role: Role


class CompanyOut(BaseModel):
    """The user's company: its kind decides which parts of the app they see."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: CompanyKind
    name: str
    country: str
    time_zone: str
    primary_color: str | None
    logo_text: str | None


class SessionOut(BaseModel):
    """A session: who, for which company, and the CSRF token to send back."""

    user: UserOut
    company: CompanyOut
    csrf_token: str = Field(description="Send it as X-CSRF-Token on POST/PUT/PATCH/DELETE.")
    expires_at: datetime


class ErrorOut(BaseModel):
    """The body of a 401, 403 or 429."""

    detail: str


class UnlockIn(BaseModel):
    """Whose sign-in to unlock: an account's e-mail, or (platform admins) an address."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, min_length=1, max_length=EMAIL_LENGTH)
    address: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_of_them(self) -> UnlockIn:
        if (self.email is None) == (self.address is None):
            raise ValueError("give either email or address")
        return self


class UnlockOut(BaseModel):
    """Whether there was a lock or failures to lift (unlocking twice is harmless)."""

    unlocked: bool


def _session_out(user: User, company: Company, csrf_token: str, expires_at: datetime) -> SessionOut:
    return SessionOut(
        user=UserOut.model_validate(user),
        company=CompanyOut.model_validate(company),
        csrf_token=csrf_token,
        expires_at=expires_at,
    )


def _set_cookies(
    response: Response, settings: Settings, issued: IssuedSession, now: datetime
) -> None:
    max_age = max(int((issued.expires_at - now).total_seconds()), 0)
    for name, value, http_only in (
        (SESSION_COOKIE, issued.cookie_value, True),
        (CSRF_COOKIE, issued.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=settings.cookie_secure,
            httponly=http_only,
            samesite="lax",
        )


def _clear_cookies(response: Response, settings: Settings) -> None:
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(
            name, path="/", secure=settings.cookie_secure, httponly=http_only, samesite="lax"
        )


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _refused(refusal: throttle.Refusal) -> JSONResponse:
    """The 429 of a throttled attempt. Returned, not raised: the request's transaction
    commits what the check wrote (a lapsed lock cleared, its audit entry)."""
    return JSONResponse(
        {"detail": LOCKED if refusal.locked else TOO_SOON},
        status_code=429,
        headers={"Retry-After": retry_after(refusal.retry_after_ms)},
    )


@router.post(
    "/sign-in",
    response_model=SessionOut,
    responses={
        401: {"model": ErrorOut, "description": WRONG_CREDENTIALS},
        429: {"model": ErrorOut, "description": f"{TOO_SOON}; or: {LOCKED} (see Retry-After)"},
    },
)
async def sign_in(
    body: SignInRequest, request: Request, response: Response, state: StateDep
) -> SessionOut | Response:
    """Check e-mail and password, start a session and set its cookies.

    Unknown e-mails cost a password verification too, and every failure answers the
    same 401, so neither timing nor message tells which e-mails have accounts. The
    throttle is checked before the e-mail is even looked up; a failure is counted in
    the request's transaction, which is why the 401 is returned rather than raised.
    The password is checked after a read and before that transaction, never inside it
    (:mod:`ils.domain.sign_in_throttle` says why).
    """
    attempt = throttle.Attempt(
        throttle.normalise_email(body.email), _client_address(request), state.clock.now_ms()
    )
    async with state.transactions.read() as session:
        early = await throttle.peek(session, attempt)
        known = None if early else await user_by_email(session, body.email)
    checked = None if early else await _check_password(state, known, body.password)
    async with state.transactions.request(reading=False) as session:
        refusal = await throttle.check(session, attempt)
        if refusal is not None:
            return _refused(refusal)
        user = await user_by_email(session, body.email)
        if checked is None or checked.password_hash != (user.password_hash if user else None):
            # Not checked against the hash there is now (the read found the attempt
            # early, or the password changed meanwhile): rare enough to do it here.
            checked = await _check_password(state, user, body.password)
        if user is None or not checked.matches:
            return await _failed(session, state, attempt, user.company_id if user else "")
        company = await company_of(session, user)
        if not user.is_active or company is None or not company.is_active:
            return await _failed(session, state, attempt, user.company_id)
        await throttle.record_success(session, attempt.email)
        if checked.rehashed is not None:
            user.password_hash = checked.rehashed
        # A session the browser still carries is ended: a sign-in always starts afresh
        # (no session fixation).
        previous = await state.auth.find(session, request.cookies.get(SESSION_COOKIE))
        if previous is not None:
            await state.auth.end(session, previous.session)
        issued = await state.auth.start(session, user, ip=_client_address(request))
        user.last_sign_in_at = issued.row.created_at
        _set_cookies(response, state.settings, issued, issued.row.created_at)
        return _session_out(user, company, issued.csrf_token, issued.expires_at)


@dataclass(frozen=True, slots=True)
class _CheckedPassword:
    """A password checked against one hash (``None``: no such user)."""

    password_hash: str | None
    matches: bool
    #: The password hashed again with the current parameters, when it matched a hash
    #: made with older ones: the upgrade is done while we know the password.
    rehashed: str | None = None


async def _check_password(state: StateDep, user: User | None, password: str) -> _CheckedPassword:
    if user is None:
        await state.passwords.verify_nobody(password)
        return _CheckedPassword(None, matches=False)
    if not await state.passwords.verify(user.password_hash, password):
        return _CheckedPassword(user.password_hash, matches=False)
    rehashed = None
    if state.passwords.needs_rehash(user.password_hash):
        rehashed = await state.passwords.hash(password)
    return _CheckedPassword(user.password_hash, matches=True, rehashed=rehashed)


async def _failed(
    session: SessionDep, state: StateDep, attempt: throttle.Attempt, company_id: str
) -> JSONResponse:
    """Count the failure (audited if it locks) and answer the one 401 of every miss."""
    rules = throttle_rules(state.settings.sign_in)
    await throttle.record_failure(session, rules, attempt, company_id)
    return JSONResponse({"detail": WRONG_CREDENTIALS}, status_code=401)


@router.post(
    "/sign-in-locks/unlock",
    responses={
        401: {"model": ErrorOut, "description": "not signed in"},
        403: {"model": ErrorOut, "description": "not an admin, or CSRF token missing"},
        404: {"model": ErrorOut, "description": "no such user in your company"},
    },
)
async def unlock_sign_in(
    body: UnlockIn, admin: ManagerUser, request: Request, state: StateDep, session: SessionDep
) -> UnlockOut:
    """Lift a sign-in lock and forget the failures, audited. A platform admin unlocks
    any e-mail or address; a company's admin the e-mails of their company's users
    (any other e-mail answers 404, whether or not it has an account)."""
    platform = admin.role is Role.PLATFORM_ADMIN
    company_id = ""
    if body.address is not None:
        if not platform:
            raise HTTPException(403, NOT_ALLOWED)
        scope, subject = throttle.ThrottleScope.ADDRESS, body.address.strip()
    else:
        assert body.email is not None
        scope, subject = throttle.ThrottleScope.ACCOUNT, body.email
        user = await user_by_email(session, body.email)
        if user is not None:
            company_id = user.company_id
        if not platform and (user is None or user.company_id != admin.company_id):
            raise not_found()
    unlocked = await throttle.unlock(
        session,
        scope,
        subject,
        state.clock.now_ms(),
        actor=(admin.id, admin.email),
        company_id=company_id,
        ip=_client_address(request),
    )
    return UnlockOut(unlocked=unlocked)


@router.post(
    "/sign-out",
    status_code=204,
    responses={
        401: {"model": ErrorOut, "description": "not signed in"},
        403: {"model": ErrorOut, "description": "CSRF token missing or wrong"},
    },
)
async def sign_out(
    auth: CurrentAuth, response: Response, state: StateDep, session: SessionDep
) -> None:
    """End the session (its row is deleted, so the cookie stops working everywhere)."""
    await state.auth.end(session, auth.session)
    _clear_cookies(response, state.settings)


@router.get("/me", responses={401: {"model": ErrorOut, "description": "not signed in"}})
async def me(auth: CurrentAuth) -> SessionOut:
    """The signed-in user and company, and the session's CSRF token (for a reloaded
    page that lost it)."""
    return _session_out(auth.user, auth.company, auth.session.csrf_token, auth.session.expires_at)
