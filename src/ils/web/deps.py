"""FastAPI dependencies for the routers: database session, job system, signed-in user.

How a router uses them::

    from ils.domain.companies import CompanyKind, Role, User
    from ils.web.deps import HelpersDep, SessionDep, require_roles, scoped_get

    PracticeStaff = Annotated[User, Depends(require_roles(
        Role.ADMIN, Role.COMPANY_ADMIN, Role.STAFF, kinds=[CompanyKind.PRACTICE]))]

    @router.post("", status_code=201)
    async def create_order(
        body: OrderIn, user: PracticeStaff, session: SessionDep, helpers: HelpersDep
    ) -> OrderOut:
        patient = await scoped_get(session, Patient, body.patient_id, user.company_id)
        order = Order(...)
        session.add(order)
        await session.flush()
        await helpers.queue_order_confirmation_email(..., session=session)
        return OrderOut.model_validate(order)

The aliases: ``SessionDep`` (the request's ``AsyncSession``), ``HelpersDep`` (the
``queue_...`` helpers, what the use cases take), ``SystemDep`` (the whole
:class:`~ils.jobs.system.JobSystem`, for the monitoring and job admin routes),
``SettingsDep``, ``StateDep`` (everything the lifespan built), ``CurrentAuth`` (session
row, user, company), ``CurrentUser``, ``CurrentCompany``, ``ManagerUser``
(platform_admin, admin, company_admin), ``PagingDep`` (a list's ``limit`` and
``offset``, and the page it answers). Helpers:
``require_roles(*roles, kinds=...)``, ``scoped_get(...)``, ``not_found()``, and
``job_operator(*roles)`` for the routes that change jobs (their audited operations;
``ManagerOperator`` is a manager's).

The rules these dependencies enforce, so routers need not repeat them:

* ``SessionDep`` is one ``AsyncSession`` per request. It commits when the handler
  returns and rolls back when anything raises (``HTTPException`` included), so a failed
  request writes nothing and, because jobs queued with ``session=session`` go through
  the outbox in that same transaction, queues nothing either. Raise errors, never
  return an error response, or the commit still happens. Call ``await session.flush()``
  where a constraint may fail (unique numbers...) to turn it into a clean 409 rather
  than a 500 at commit. The commit runs before the response is sent, so a client that
  got 2xx knows the data is stored. GET handlers only read: on SQLite their
  transaction is read-only (deferred), so reads never wait for writers.
* ``CurrentUser`` / ``CurrentAuth`` / ``CurrentCompany`` answer 401 ``{"detail": "not
  signed in"}`` without a genuine, unexpired session of an active user of an active
  company, and 403 ``{"detail": "CSRF token missing or wrong"}`` for POST, PUT, PATCH
  and DELETE whose ``X-CSRF-Token`` header does not match the session. Every route
  that changes data must depend on one of them (or on ``require_roles``), which is how
  it gets the CSRF check.
* ``require_roles`` answers 403 for other roles (and other company kinds when given).
* ``scoped_get`` answers 404 for a record of another company, never 403: the API does
  not reveal that a record exists. It is the domain's ``get_scoped`` itself (services
  use that name): its ``NotFoundError`` becomes the same 404 body as ``not_found()``.

A dependency of your own with ``yield`` that takes ``SessionDep`` must be declared with
``Depends(..., scope="function")`` too (FastAPI refuses request-scoped generators on
function-scoped ones).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.domain.companies import MANAGER_ROLES, Company, CompanyKind, Role, User
from ils.domain.scoping import get_scoped
from ils.errors import UnknownQueueError
from ils.jobs.admin import JobAdmin
from ils.jobs.helpers import JobHelpers
from ils.jobs.producer import COMPANY_INFO_KEY
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.web.schemas.common import DEFAULT_LIMIT, Limit, Offset, Page
from ils.web.security import CSRF_HEADER, SESSION_COOKIE, SessionAuth, csrf_matches
from ils.web.services import queue_jobs as job_service
from ils.web.services.common import now_utc
from ils.web.state import WebState

#: Methods that only read: their SQLite transactions do not take the write lock.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Methods that change state and therefore need the CSRF header.
CSRF_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_SIGNED_IN = "not signed in"
CSRF_REFUSED = "CSRF token missing or wrong"
NOT_ALLOWED = "not allowed for your role"
NOT_FOUND = "not found"

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


async def get_state(request: Request) -> WebState:
    """The lifespan's :class:`WebState` (fails loudly when the lifespan did not run).

    This and the other dependencies that await nothing are still ``async def``:
    FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop for each
    one on every request (5 % of the order API's time in a profile).
    """
    state = getattr(request.app.state, "ils", None)
    if not isinstance(state, WebState):
        raise RuntimeError("the app's lifespan has not run: use create_app and start it")
    return state


StateDep = Annotated[WebState, Depends(get_state)]


async def get_system(state: StateDep) -> JobSystem:
    """The job system: ``system.helpers.queue_...(..., session=session)`` to enqueue."""
    return state.system


async def get_helpers(state: StateDep) -> JobHelpers:
    """The ``queue_...`` helpers of jobs.md: all a use case needs of the job system to
    queue its jobs in the request's transaction."""
    return state.system.helpers


async def get_settings(state: StateDep) -> Settings:
    """The settings the app was created with."""
    return state.settings


SystemDep = Annotated[JobSystem, Depends(get_system)]
HelpersDep = Annotated[JobHelpers, Depends(get_helpers)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request, state: StateDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit on success, roll back on any exception
    (``Transactions.request``: on SQLite a GET, HEAD or OPTIONS request reads without
    taking the write lock, and must not write)."""
    async with state.transactions.request(reading=request.method in READ_METHODS) as session:
        yield session


# scope="function": the commit runs when the handler returns, before the response is
# sent (the default "request" scope would commit after the client already has a 200).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_auth(request: Request, state: StateDep, session: SessionDep) -> SessionAuth:
    """The request's session, user and company; 401 without one, 403 on a CSRF miss."""
    auth = await state.auth.find(session, request.cookies.get(SESSION_COOKIE))
    if auth is None:
        raise HTTPException(401, NOT_SIGNED_IN)
    if request.method in CSRF_METHODS and not csrf_matches(
        auth.session.csrf_token, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, CSRF_REFUSED)
    # Jobs this request queues are made for the signed-in user's company.
    session.info[COMPANY_INFO_KEY] = auth.company.id
    return auth


CurrentAuth = Annotated[SessionAuth, Depends(get_auth)]


async def get_current_company(auth: CurrentAuth) -> Company:
    """The signed-in user's company: the scope of every query."""
    return auth.company


CurrentCompany = Annotated[Company, Depends(get_current_company)]


def require_roles(
    *roles: Role, kinds: Iterable[CompanyKind] = ()
) -> Callable[[SessionAuth], Awaitable[User]]:
    """A dependency returning the signed-in user if their role (and company kind) may.

    ``platform_admin`` always passes the role check: the roles table lets it do
    everything in its own company. No ``roles`` means any role; no ``kinds`` means any
    company kind. Use it as ``Annotated[User, Depends(require_roles(Role.STAFF, ...))]``.

    Args:
        roles: The roles allowed (besides ``platform_admin``).
        kinds: The company kinds allowed, for "practice staff" or "lab admin" rules.

    Returns:
        The dependency; it raises 401 (not signed in), 403 (CSRF, role or kind).
    """
    allowed_roles = frozenset(roles) | {Role.PLATFORM_ADMIN} if roles else None
    allowed_kinds = frozenset(kinds)

    async def check(auth: CurrentAuth) -> User:
        if allowed_roles is not None and auth.user.role not in allowed_roles:
            raise HTTPException(403, NOT_ALLOWED)
        if allowed_kinds and auth.company.kind not in allowed_kinds:
            raise HTTPException(403, NOT_ALLOWED)
        return auth.user

    return check


#: The signed-in user (loaded in the request's session), of any role and company kind.
CurrentUser = Annotated[User, Depends(require_roles())]
#: platform_admin, admin or company_admin of any company kind (marketplace decisions...).
ManagerUser = Annotated[User, Depends(require_roles(*MANAGER_ROLES))]


def not_found() -> HTTPException:
    """The one 404 of the API (``raise not_found()``): same body whether the record is
    missing or belongs to another company."""
    return HTTPException(404, NOT_FOUND)


def queue_key(system: JobSystem, queue: str) -> str:
    """The catalogue key of ``queue`` from a URL; an unknown queue is the API's 404."""
    try:
        return system.catalogue[queue].key
    except UnknownQueueError:
        raise not_found() from None


@dataclass(frozen=True, slots=True)
class Paging:
    """The window a list was asked for, and the page that answers it.

    Every list of the API takes the same ``limit`` and ``offset`` query parameters and
    answers a :class:`~ils.web.schemas.common.Page` of that window; one dependency
    takes the one and builds the other, so a list route states only its filters and
    how a row becomes an item.
    """

    limit: int
    offset: int

    def page(self, rows: Iterable[RowT], total: int, item: Callable[[RowT], ItemT]) -> Page[ItemT]:
        """This window's ``rows`` as ``item`` makes them, with the ``total`` matching."""
        items = [item(row) for row in rows]
        # Not ``Page[ItemT]``: parametrising with a type variable built a new pydantic
        # class (its whole schema) on every call, 2 % of a loaded server (bench/users.py).
        return Page(items=items, total=total, limit=self.limit, offset=self.offset)


async def get_paging(limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> Paging:
    """The paging query parameters of a list."""
    return Paging(limit, offset)


PagingDep = Annotated[Paging, Depends(get_paging)]


@dataclass(frozen=True, slots=True)
class JobOperator:
    """A request that changes jobs: who asks, and the transaction the change and its
    audit entry share.

    Every job operation route needs the same five things (user, job system, session,
    request, clock) for the same two steps, acting through the user's scoped admin and
    auditing it; one dependency gives them, so a route states only what it does.
    """

    user: User
    system: JobSystem
    session: AsyncSession
    request: Request
    clock: Clock

    def admin(self) -> JobAdmin:
        """The user's job admin, working in the request's transaction."""
        return job_service.admin_for(self.system, self.user, self.session)

    def queue_key(self, queue: str) -> str:
        """The catalogue key of ``queue`` from the URL (404 when unknown)."""
        return queue_key(self.system, queue)

    def audit(self, action: str, queue: str, job_id: str | None = None, **detail: Any) -> None:
        """Record the operation, stamped now, in the request's transaction."""
        now = now_utc(self.clock)
        job_service.audit(
            self.session, self.request, self.user, now, action, queue, job_id, **detail
        )


def job_operator(*roles: Role) -> Callable[..., Awaitable[JobOperator]]:
    """A dependency giving the :class:`JobOperator` of a user with one of ``roles``
    (401 and 403 as :func:`require_roles`). Use it as
    ``Annotated[JobOperator, Depends(job_operator(*MANAGER_ROLES))]``."""
    allowed = require_roles(*roles)

    async def operator(
        auth: CurrentAuth,
        system: SystemDep,
        session: SessionDep,
        request: Request,
        state: StateDep,
    ) -> JobOperator:
        user = await allowed(auth)
        return JobOperator(user, system, session, request, state.clock)

    return operator


#: A manager's job operations (platform_admin: every job; admin and company_admin: their
#: company's), the rule of the queue and failure-group routes.
ManagerOperator = Annotated[JobOperator, Depends(job_operator(*MANAGER_ROLES))]


#: The company-scoped lookup by id (:func:`ils.domain.scoping.get_scoped`), under the
#: name routers have always used. One lookup serves services and routers alike: it
#: raises ``NotFoundError`` for a missing id and for another company's record, and
#: the app's error handlers (``ils.web.errors``) answer that with the very 404 of
#: :func:`not_found`, ``{"detail": "not found"}``, rolling the request back as any
#: raised error does.
scoped_get = get_scoped
