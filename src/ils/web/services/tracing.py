"""Tracing-file use case: store an uploaded OMA/VCA file and queue its processing.

The file goes to upload storage first; only once it is there are its row and its
``process-oma-file`` job written, in the request's transaction. Storage that fails
raises before anything is recorded, so a failed upload leaves neither a row pointing
at a missing file nor a job that would fail on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import User
from ils.domain.content import UploadedFile
from ils.domain.orders import Order
from ils.domain.types import new_id
from ils.jobs.helpers import JobHelpers
from ils.jobs.model import JobRef
from ils.storage import FileStorage

#: The content type recorded for every tracing file (recognised by content, not name).
CONTENT_TYPE: Final = "application/vnd.vca-dcs"


async def upload_tracing(
    session: AsyncSession,
    helpers: JobHelpers,
    uploads: FileStorage,
    user: User,
    order: Order,
    filename: str,
    data: bytes,
    now: datetime,
) -> tuple[UploadedFile, JobRef]:
    """Store ``data`` under the user's company, record it and queue its processing.

    ``order`` must already be scoped to the user's company, and ``data`` already
    checked to be DCS text: this function trusts both.

    Raises:
        StorageError: upload storage cannot take the file (nothing recorded or queued).
    """
    file_id = new_id()
    stored = await uploads.put(f"{user.company_id}/{file_id}.oma", data)
    upload = UploadedFile(
        id=file_id,
        company_id=user.company_id,
        order_id=order.id,
        filename=filename,
        content_type=CONTENT_TYPE,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        path=stored.key,
        uploaded_by=user.id,
        created_at=now,
    )
    session.add(upload)
    await session.flush()
    ref = await helpers.queue_oma_file(order.id, file_id, session=session)
    return upload, ref
