"""The transactional outbox of the job system.

Revision ID: 0002_outbox
Revises: 0001_job_store
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_outbox"
down_revision = "0001_job_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ils_outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("delay_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("backoff_delay_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ils_outbox")),
    )
    op.create_index(
        op.f("ix_ils_outbox_created_at_ms"), "ils_outbox", ["created_at_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ils_outbox_created_at_ms"), table_name="ils_outbox")
    op.drop_table("ils_outbox")
