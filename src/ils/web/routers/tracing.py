"""Lens-tracing files of an order (``/api/orders/{id}/tracing``).

Either side of an order (practice: admin, company_admin, staff; lab: any role) may
upload the frame tracing; both read what the OMA worker made of it. The body is the
file itself (``application/octet-stream`` or ``text/plain``; the name in
``?filename=``), at most ``ILS_OMA__MAX_UPLOAD_BYTES`` (413 beyond). The file is
recognised by its content, not its name: ``.oma`` is also an audio format, and a file
that is not DCS text (``LABEL=value`` records) answers 415 with nothing stored. The
file is stored, recorded and its ``process-oma-file`` job queued in the request's
transaction.
"""

from __future__ import annotations

import logging
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ils.domain.companies import CompanyKind, Role, User
from ils.domain.orders import Order
from ils.domain.scoping import get_scoped
from ils.domain.tracing_queries import current_tracing
from ils.errors import ForbiddenError, StorageError
from ils.web.deps import CurrentCompany, SessionDep, StateDep, require_roles
from ils.web.schemas.ai import QueuedOut
from ils.web.schemas.common import error_responses
from ils.web.schemas.tracing import TracingOut, UploadedFileOut, UploadedOut
from ils.web.services import tracing as service
from ils.web.services.common import now_utc
from ils.web.services.orders import ORDER_OWNERS
from ils.workers.oma.records import looks_like_oma

router = APIRouter(prefix="/api/orders", tags=["tracing"])
logger = logging.getLogger(__name__)

OrderSideUser = Annotated[
    User, Depends(require_roles(kinds=[CompanyKind.PRACTICE, CompanyKind.LAB]))
]
FILENAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,199}$"
NOT_TRACING: Final = (
    "not a lens-tracing file: expected DCS (OMA/VCA) text records such as TRCFMT=1;400;E;R;F"
)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes ``limit`` bytes, so an oversized
    upload is never held in memory whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"a tracing file may be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"a tracing file may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/{order_id}/tracing",
    status_code=202,
    summary="Upload the order's tracing file (OMA/VCA)",
    responses={
        **error_responses(401, 403, 404),
        413: {"description": "the file is larger than allowed"},
        415: {"description": "the file is not a DCS (OMA/VCA) tracing file"},
        503: {"description": "file storage cannot be reached; nothing was stored"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_tracing(
    order_id: str,
    request: Request,
    user: OrderSideUser,
    company: CurrentCompany,
    session: SessionDep,
    state: StateDep,
    filename: Annotated[str, Query(pattern=FILENAME_PATTERN)] = "tracing.oma",
) -> UploadedOut:
    """Store the file and queue ``process-oma-file`` for it (202). The practice's
    ordering roles and anyone of the lab may; a practice's lab_tech may not."""
    if company.kind is CompanyKind.PRACTICE and user.role is Role.LAB_TECH:
        raise ForbiddenError()
    order = await get_scoped(session, Order, order_id, user.company_id, owners=ORDER_OWNERS)
    data = await _read_limited(request, state.settings.oma.max_upload_bytes)
    if not data or not looks_like_oma(data):
        raise HTTPException(415, NOT_TRACING)
    now = now_utc(state.clock)
    try:
        upload, ref = await service.upload_tracing(
            session, state.system.helpers, state.storage.uploads, user, order, filename, data, now
        )
    except StorageError as exc:
        logger.error("order %s: tracing file not stored: %s", order.id, exc)
        raise HTTPException(503, "file storage is unavailable, try again") from None
    return UploadedOut(
        file=UploadedFileOut.model_validate(upload),
        job=QueuedOut(queue=ref.queue, name=ref.name, job_id=ref.job_id),
    )


@router.get(
    "/{order_id}/tracing",
    summary="The order's current tracing (what the newest file showed)",
    responses=error_responses(401, 403, 404),
)
async def get_tracing(order_id: str, user: OrderSideUser, session: SessionDep) -> TracingOut:
    """404 when no tracing file of the order has been processed yet."""
    order = await get_scoped(session, Order, order_id, user.company_id, owners=ORDER_OWNERS)
    return TracingOut.model_validate(await current_tracing(session, order.id))
