"""Making one document: load, render off the loop, store the file, record the row.

:class:`DocumentGenerator` is what the job handlers call, and what code outside the
queue (a request, bench/orders.py's comparison) can call too, through the five
functions at the end of this module.

The rules it keeps:

* **A retried job makes no second version.** With a ``job_id`` the row of an earlier
  attempt is returned as it is (no render); ``documents.job_id`` is unique, so two
  attempts racing (a lock that expired) cannot both insert.
* **Regenerating makes a new version**: version = the subject's highest version of
  that kind plus one, checked by the unique ``(subject, kind, version)`` index; a
  regeneration that lost the race renders again with the next number.
* **No partial or orphaned file on failure.** Missing data fails before anything is
  written; the file is written atomically (temp file, rename) and removed again if
  its row cannot be recorded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock, SystemClock
from ils.db.transactions import Transactions
from ils.domain.content import Document
from ils.domain.types import new_id
from ils.jobs.worker_context import WorkerContext
from ils.storage import FileStorage
from ils.storage.backends import open_storages
from ils.workers.pdf.data import DocumentKind, DocumentMeta
from ils.workers.pdf.errors import DocumentDataError, DocumentVersionConflict
from ils.workers.pdf.load import LOADERS, SUBJECT_COLUMN, Loaded, generated_at, with_meta
from ils.workers.pdf.pool import ProcessPoolRenderer, Renderer

#: Renders tried when regenerations keep racing for the same version.
VERSION_ATTEMPTS: Final = 5

logger = logging.getLogger(__name__)


def default_pool_size(context: WorkerContext) -> int:
    """``ILS_PDF__POOL_SIZE``, else the smaller of CPUs and the pdf queue's concurrency."""
    configured = context.settings.pdf.pool_size
    if configured is not None:
        return configured
    return max(1, min(os.cpu_count() or 1, context.catalogue["pdf"].concurrency))


@dataclass(eq=False)  # one generator is one set of resources: compared by identity
class DocumentGenerator:
    """Generates and records documents on one database and one storage."""

    db: Transactions
    storage: FileStorage
    renderer: Renderer
    clock: Clock = field(default_factory=SystemClock, kw_only=True)

    @classmethod
    def for_context(
        cls, context: WorkerContext, *, renderer: Renderer | None = None
    ) -> DocumentGenerator:
        """A generator on the worker context's database and settings.

        Without ``renderer`` it renders in a new process pool (sized by
        :func:`default_pool_size`, started with the first document): :meth:`close` it.
        """
        settings = context.settings
        return cls(
            context.db,
            open_storages(settings).documents,
            renderer
            or ProcessPoolRenderer(
                default_pool_size(context),
                timeout_s=settings.pdf.render_timeout_s,
                nice=settings.pdf.render_nice,
            ),
            clock=context.clock,
        )

    def close(self) -> None:
        """Stop the renderer's processes (idempotent; a later render starts them again)."""
        self.renderer.close()

    async def generate(
        self, kind: DocumentKind | str, subject_id: str, *, job_id: str | None = None
    ) -> Document:
        """The document of ``kind`` for ``subject_id``: a new version, or with a
        ``job_id`` already seen, the version that job made.

        Raises:
            DocumentDataError: the subject is missing or inconsistent (permanent).
            DocumentRenderError, StorageError, DocumentVersionConflict: worth
                retrying.
        """
        kind = DocumentKind(kind)
        for attempt in range(1, VERSION_ATTEMPTS + 1):
            try:
                return await self._generate_once(kind, subject_id, job_id)
            except DocumentVersionConflict:
                if attempt == VERSION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _generate_once(
        self, kind: DocumentKind, subject_id: str, job_id: str | None
    ) -> Document:
        column = getattr(Document, SUBJECT_COLUMN[kind])
        async with self.db.read() as session:
            if job_id is not None:
                done = await self._made_by_job(session, kind, subject_id, job_id)
                if done is not None:
                    return done
            loaded = await LOADERS[kind](session, subject_id)
            version = await self._next_version(session, column, kind, subject_id)
        meta = DocumentMeta(version, generated_at(self.clock.now_ms(), loaded.time_zone))
        pdf = await self.renderer.render(kind.value, with_meta(loaded.data, meta))
        document_id = new_id()
        key = f"{loaded.company_id}/{kind.value}/{subject_id}/{document_id}.pdf"
        stored = await self.storage.put(key, pdf)
        try:
            document, created = await self._record(
                document_id,
                kind,
                subject_id,
                column,
                version,
                loaded,
                stored.key,
                stored.sha256,
                stored.size_bytes,
                job_id,
            )
        except BaseException:
            await self.storage.delete(key)
            raise
        if not created:
            # Another attempt of this job recorded its file first: ours is not needed.
            await self.storage.delete(key)
        return document

    async def _record(
        self,
        document_id: str,
        kind: DocumentKind,
        subject_id: str,
        column: Any,
        version: int,
        loaded: Loaded,
        key: str,
        sha256: str,
        size_bytes: int,
        job_id: str | None,
    ) -> tuple[Document, bool]:
        """Insert the row; ``(row, False)`` when an attempt of the same job won."""
        document = Document(
            id=document_id,
            company_id=loaded.company_id,
            kind=kind.value,
            version=version,
            path=key,
            sha256=sha256,
            size_bytes=size_bytes,
            job_id=job_id,
            filename=download_name(kind, loaded.number, version),
            **{SUBJECT_COLUMN[kind]: subject_id},
        )
        try:
            async with self.db.write() as session:
                if job_id is not None and await self._by_job(session, job_id) is not None:
                    raise _JobAlreadyRecorded
                if await self._next_version(session, column, kind, subject_id) != version:
                    raise DocumentVersionConflict(f"{kind.value} version {version} was taken")
                session.add(document)
        except (IntegrityError, _JobAlreadyRecorded):
            # An attempt of the same job that won the race is the answer; any other
            # winner took our version number: render again with the next one.
            if job_id is not None:
                async with self.db.read() as session:
                    done = await self._made_by_job(session, kind, subject_id, job_id)
                if done is not None:
                    return done, False
            raise DocumentVersionConflict(f"{kind.value} version {version} was taken") from None
        return document, True

    @staticmethod
    async def _by_job(session: AsyncSession, job_id: str) -> Document | None:
        found: Document | None = await session.scalar(
            select(Document).where(Document.job_id == job_id)
        )
        return found

    @classmethod
    async def _made_by_job(
        cls, session: AsyncSession, kind: DocumentKind, subject_id: str, job_id: str
    ) -> Document | None:
        """The document an earlier attempt of ``job_id`` recorded, if any, checked to be
        this very one (:func:`_same_subject`): a retry answers with it, whether it finds
        it before rendering or after losing the race to record."""
        done = await cls._by_job(session, job_id)
        return None if done is None else _same_subject(done, kind, subject_id, job_id)

    @staticmethod
    async def _next_version(
        session: AsyncSession, column: Any, kind: DocumentKind, subject_id: str
    ) -> int:
        highest = await session.scalar(
            select(func.max(Document.version)).where(
                column == subject_id, Document.kind == kind.value
            )
        )
        return int(highest or 0) + 1


class _JobAlreadyRecorded(Exception):
    """Internal: the job's row appeared while this attempt rendered."""


def _same_subject(document: Document, kind: DocumentKind, subject_id: str, job_id: str) -> Document:
    """The row of ``job_id``, checked to be the same document (a job id reused for
    another subject would otherwise silently answer with the wrong file)."""
    if document.kind != kind.value or getattr(document, SUBJECT_COLUMN[kind]) != subject_id:
        raise DocumentDataError(f"job id {job_id} already made another document")
    return document


def download_name(kind: DocumentKind, number: str, version: int) -> str:
    """``invoice-INV-2026-00012-v2.pdf``: kind, printed number, version; safe characters."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in number)[:80]
    return f"{kind.value.replace('_', '-')}-{safe}-v{version}.pdf"


# -- one callable per document, for callers outside the queue ---------------------


@dataclass(frozen=True, slots=True)
class KindGenerator:
    """``generate_invoice(generator, invoice_id, job_id=...)``: one kind's
    :meth:`DocumentGenerator.generate`, named for callers outside the queue."""

    kind: DocumentKind

    async def __call__(
        self, generator: DocumentGenerator, subject_id: str, *, job_id: str | None = None
    ) -> Document:
        return await generator.generate(self.kind, subject_id, job_id=job_id)


#: The order sheet of an order (owned by the ordering practice).
generate_order_sheet: Final = KindGenerator(DocumentKind.ORDER_SHEET)
#: The lab work ticket of an order (owned by the lab).
generate_lab_work_ticket: Final = KindGenerator(DocumentKind.LAB_WORK_TICKET)
#: An invoice (owned by the issuing lab).
generate_invoice: Final = KindGenerator(DocumentKind.INVOICE)
#: The receipt of an invoice's latest payment (owned by the issuer).
generate_receipt: Final = KindGenerator(DocumentKind.RECEIPT)
#: The examination form of an examination (owned by the practice).
generate_examination_form: Final = KindGenerator(DocumentKind.EXAMINATION_FORM)
