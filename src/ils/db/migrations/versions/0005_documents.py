"""Documents of the PDF worker: one row per job, versions unique per subject; outlines.

* ``documents.job_id`` becomes unique: a retried job finds the row its first attempt
  wrote instead of adding a second version (the constraint, not a read-then-write,
  decides under concurrency).
* ``(order_id | invoice_id | examination_id, kind, version)`` are unique: two
  regenerations racing for the same next version cannot both win. Unique indexes
  rather than constraints, so SQLite needs no table rebuild; a NULL subject column is
  never equal to another, so each index only binds the rows of its own subject.
* ``documents.filename``: the download name (``invoice-INV-2026-00012-v2.pdf``),
  fixed when the file is made.
* ``orders.frame_outline``: the traced lens shape, ``[[x_mm, y_mm], ...]`` around the
  boxing centre of the right lens; the OMA worker will fill it, the lab work ticket
  draws it.

Revision ID: 0005_documents
Revises: 0004_mail_messages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_documents"
down_revision = "0004_mail_messages"
branch_labels = None
depends_on = None

SUBJECT_INDEXES = (
    ("uq_documents_order_kind_version", "order_id"),
    ("uq_documents_invoice_kind_version", "invoice_id"),
    ("uq_documents_examination_kind_version", "examination_id"),
)


def upgrade() -> None:
    op.add_column("documents", sa.Column("filename", sa.String(length=200), nullable=True))
    op.drop_index("ix_documents_job_id", table_name="documents")
    op.create_index("ix_documents_job_id", "documents", ["job_id"], unique=True)
    for name, column in SUBJECT_INDEXES:
        op.create_index(name, "documents", [column, "kind", "version"], unique=True)
    op.add_column("orders", sa.Column("frame_outline", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("frame_outline")
    for name, _column in SUBJECT_INDEXES:
        op.drop_index(name, table_name="documents")
    op.drop_index("ix_documents_job_id", table_name="documents")
    op.create_index("ix_documents_job_id", "documents", ["job_id"], unique=False)
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("filename")
