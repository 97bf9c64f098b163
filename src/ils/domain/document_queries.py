"""Read model of the generated documents (PDF versions) a company owns.

A document belongs to the company that owns its subject (the practice for order
sheets and examination forms, the lab for work tickets, invoices and receipts), and
every query filters on that company: another company's subject lists nothing, and its
document id answers :class:`~ils.errors.NotFoundError` like an unknown one. Which
roles may read which kinds is the caller's rule, not this module's.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import Document
from ils.domain.scoping import get_scoped

#: Most versions one listing returns (a subject regenerated without end stays cheap).
MAX_VERSIONS: Final = 200


async def subject_documents(
    session: AsyncSession,
    company_id: str,
    subject_id: str,
    kind: str | None = None,
    limit: int = MAX_VERSIONS,
) -> list[Document]:
    """The company's documents of an order, invoice or examination ``subject_id``,
    by kind and newest version first, only of ``kind`` when given."""
    query = select(Document).where(
        Document.company_id == company_id,
        or_(
            Document.order_id == subject_id,
            Document.invoice_id == subject_id,
            Document.examination_id == subject_id,
        ),
    )
    if kind is not None:
        query = query.where(Document.kind == kind)
    rows = await session.scalars(
        query.order_by(Document.kind, Document.version.desc()).limit(limit)
    )
    return list(rows.all())


async def get_document(session: AsyncSession, company_id: str, document_id: str) -> Document:
    """The company's document ``document_id``.

    Raises:
        NotFoundError: unknown id or another company's document.
    """
    return await get_scoped(session, Document, document_id, company_id)
