"""Tracing results: what the OMA worker read, measured and found in an uploaded file.

``order_tracings``: one row per processed tracing file of an order (the parsed
records, measurements per eye, findings, the outline), ``job_id`` unique so a retried
job stores one row. The newest row of an order is its current tracing.

Revision ID: 0010_order_tracings
Revises: 0009_ai_worker
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_order_tracings"
down_revision = "0009_ai_worker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_tracings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", sa.JSON(), nullable=True),
        sa.Column("measurements", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("outline", sa.JSON(), nullable=True),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_tracings_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["uploaded_files.id"],
            name=op.f("fk_order_tracings_file_id_uploaded_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tracings")),
        sa.UniqueConstraint("job_id", name=op.f("uq_order_tracings_job_id")),
    )
    op.create_index("ix_order_tracings_order_created", "order_tracings", ["order_id", "created_at"])
    op.create_index(op.f("ix_order_tracings_file_id"), "order_tracings", ["file_id"])


def downgrade() -> None:
    op.drop_table("order_tracings")
