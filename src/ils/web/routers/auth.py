"""Sign-in, sign-out and "who am I" (``/api/auth``).

A successful sign-in sets two cookies: ``ils_session`` (HttpOnly, so scripts and an
XSS payload cannot read it) and ``ils_csrf`` (readable, so the web client can echo it
in ``X-CSRF-Token``). SameSite=Lax keeps the session off cross-site POSTs; the CSRF
header covers what SameSite does not (older browsers, same-site subdomains).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ils.domain.account_queries import company_of, user_by_email
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.types import EMAIL_LENGTH
from ils.settings import Settings
from ils.web.deps import CurrentAuth, SessionDep, StateDep
from ils.web.security import CSRF_COOKIE, SESSION_COOKIE, IssuedSession

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: One message for unknown e-mail, wrong password and inactive account alike.
WRONG_CREDENTIALS = "wrong e-mail or password"
# Longer passwords are refused before hashing: argon2 would take them, but a megabyte
# "password" is a way to burn CPU, not a password.
MAX_PASSWORD_LENGTH = 1024


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
    """The body of a 401 or 403."""

    detail: str


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


@router.post(
    "/sign-in",
    responses={401: {"model": ErrorOut, "description": WRONG_CREDENTIALS}},
)
async def sign_in(
    body: SignInRequest,
    request: Request,
    response: Response,
    state: StateDep,
    session: SessionDep,
) -> SessionOut:
    """Check e-mail and password, start a session and set its cookies.

    Unknown e-mails cost a password verification too, and every failure answers the
    same 401, so neither timing nor message tells which e-mails have accounts.
    """
    user = await user_by_email(session, body.email)
    if user is None:
        await state.passwords.verify_nobody(body.password)
        raise HTTPException(401, WRONG_CREDENTIALS)
    if not await state.passwords.verify(user.password_hash, body.password):
        raise HTTPException(401, WRONG_CREDENTIALS)
    company = await company_of(session, user)
    if not user.is_active or company is None or not company.is_active:
        raise HTTPException(401, WRONG_CREDENTIALS)
    if state.passwords.needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made: upgrade it while we know
        # the password.
        user.password_hash = await state.passwords.hash(body.password)
    # A session the browser still carries is ended: a sign-in always starts afresh
    # (no session fixation).
    previous = await state.auth.find(session, request.cookies.get(SESSION_COOKIE))
    if previous is not None:
        await state.auth.end(session, previous.session)
    issued = await state.auth.start(
        session, user, ip=request.client.host if request.client else None
    )
    user.last_sign_in_at = issued.row.created_at
    _set_cookies(response, state.settings, issued, issued.row.created_at)
    return _session_out(user, company, issued.csrf_token, issued.expires_at)


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
