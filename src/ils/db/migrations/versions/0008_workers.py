"""Worker heartbeats: which worker processes are alive, for the health panel.

``ils_workers``: one row per running worker process (id, host, pid, its queues,
started, last seen), upserted every few seconds; a row not seen for a few heartbeats
is a worker that died.

Revision ID: 0008_workers
Revises: 0007_job_company
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_workers"
down_revision = "0007_job_company"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ils_workers",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("seen_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_ils_workers")),
    )
    op.create_index(op.f("ix_ils_workers_seen_at_ms"), "ils_workers", ["seen_at_ms"], unique=False)


def downgrade() -> None:
    op.drop_table("ils_workers")
