"""Generated documents (``/api/documents``): download a PDF, list a subject's versions.

Who may: any user of the company that owns the document (the practice for order
sheets and examination forms, the lab for work tickets, invoices and receipts);
examination forms are clinical records, so not ``lab_tech``. Another company's
document answers 404, as every record of the API does.

The bytes come from the app's document storage (a local directory or the fleet's
S3 bucket, ``ils.storage.backends``), which checks them against the row's sha256
before they are sent: a file changed or damaged in storage is refused (500), not
handed out, and storage that cannot be reached answers 503.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import computed_field

from ils.domain.companies import Role
from ils.domain.document_queries import get_document, subject_documents
from ils.errors import ForbiddenError, StorageChecksumError, StorageError
from ils.web.deps import CurrentUser, SessionDep, StateDep, not_found
from ils.web.schemas.common import OutputModel, RecordId, error_responses
from ils.workers.pdf.data import DocumentKind

router = APIRouter(prefix="/api/documents", tags=["documents"])

#: Kinds holding clinical data, which production roles do not read.
CLINICAL_KINDS: Final = frozenset({DocumentKind.EXAMINATION_FORM.value})
CLINICAL_EXCLUDED_ROLES: Final = frozenset({Role.LAB_TECH})

logger = logging.getLogger(__name__)


class DocumentOut(OutputModel):
    """A stored version of a document (the file is at ``download_url``)."""

    id: str
    kind: str
    version: int
    order_id: str | None
    invoice_id: str | None
    examination_id: str | None
    filename: str | None
    size_bytes: int
    sha256: str
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def download_url(self) -> str:
        """Where the PDF of this version is downloaded."""
        return f"/api/documents/{self.id}"


def _may_read(kind: str, role: Role) -> bool:
    return kind not in CLINICAL_KINDS or role not in CLINICAL_EXCLUDED_ROLES


@router.get(
    "",
    summary="Versions of a subject's documents",
    responses=error_responses(401),
)
async def list_documents(
    user: CurrentUser,
    session: SessionDep,
    subject: Annotated[RecordId, Query(description="An order, invoice or examination id.")],
    kind: DocumentKind | None = None,
) -> list[DocumentOut]:
    """Your company's documents of ``subject`` (newest version first), optionally of
    one ``kind``; an unknown subject or another company's lists nothing."""
    rows = await subject_documents(
        session, user.company_id, subject, kind.value if kind is not None else None
    )
    return [DocumentOut.model_validate(row) for row in rows if _may_read(row.kind, user.role)]


@router.get(
    "/{document_id}",
    summary="Download a document (PDF)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the PDF"},
        **error_responses(401, 403, 404),
        500: {"description": "the stored file does not match its checksum"},
        503: {"description": "document storage cannot be reached"},
    },
)
async def download_document(
    document_id: str, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    """The PDF, as an attachment named after the document (``invoice-INV-...-v2.pdf``)."""
    document = await get_document(session, user.company_id, document_id)
    if not _may_read(document.kind, user.role):
        raise ForbiddenError()
    try:
        content = await state.storage.documents.get(document.path, sha256=document.sha256)
    except (FileNotFoundError, ValueError):
        logger.error("document %s: file %s is missing", document.id, document.path)
        raise not_found() from None
    except StorageChecksumError:
        logger.error("document %s: file does not match its checksum", document.id)
        raise HTTPException(500, "the stored document is damaged") from None
    except StorageError as exc:
        logger.error("document %s: %s", document.id, exc)
        raise HTTPException(503, "document storage is unavailable, try again") from None
    filename = document.filename or f"{document.kind}-{document.id}.pdf"
    return Response(
        content=content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{document.sha256}"',
        },
    )
