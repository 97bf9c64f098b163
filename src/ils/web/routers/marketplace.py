"""The marketplace (``/api/marketplace/connections``): companies connect to trade.

Who may (docs/platform.md): admin and company_admin (and platform_admin) ask another
company to connect; the asked company's admin and company_admin accept or reject;
every signed-in user lists their company's connections. A connection of two other
companies answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter

from ils.domain.marketplace import ConnectionStatus
from ils.web.deps import CurrentCompany, CurrentUser, HelpersDep, ManagerUser, SessionDep, StateDep
from ils.web.schemas.common import error_responses
from ils.web.schemas.marketplace import ConnectionCreate, ConnectionOut, Decision
from ils.web.services import marketplace as service
from ils.web.services.common import now_utc

router = APIRouter(prefix="/api/marketplace/connections", tags=["marketplace"])


@router.post(
    "",
    status_code=201,
    summary="Ask a company to connect",
    responses=error_responses(401, 403, 409),
)
async def request_connection(
    body: ConnectionCreate,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> ConnectionOut:
    """Ask another active company to connect (409 if a live link exists either way).

    Queues: the marketplace-connection e-mail, and a marketplace notification
    (``request``) to each admin and company_admin of the company asked.
    """
    connection, target = await service.request_connection(
        session, helpers, user, company, body, now_utc(state.clock)
    )
    return service.connection_out(connection, company.id, target)


@router.get(
    "",
    summary="Your company's connections",
    responses=error_responses(
        401,
    ),
)
async def list_connections(
    user: CurrentUser,
    company: CurrentCompany,
    session: SessionDep,
    status: ConnectionStatus | None = None,
) -> list[ConnectionOut]:
    """Connections your company asked for or was asked for, newest first."""
    return await service.list_connections(session, company, status)


@router.post(
    "/{connection_id}/{decision}",
    summary="Accept or reject a connection request",
    responses=error_responses(401, 403, 404, 409),
)
async def decide_connection(
    connection_id: str,
    decision: Decision,
    user: ManagerUser,
    company: CurrentCompany,
    session: SessionDep,
    helpers: HelpersDep,
    state: StateDep,
) -> ConnectionOut:
    """Accept (``/accept``) or reject (``/reject``) a pending request made to your company.

    Queues: a marketplace notification (``accepted`` or ``rejected``) to each admin and
    company_admin of the requesting company.
    """
    connection, requester = await service.decide(
        session,
        helpers,
        user,
        company,
        connection_id,
        decision == Decision.ACCEPT,
        now_utc(state.clock),
    )
    return service.connection_out(connection, company.id, requester)
