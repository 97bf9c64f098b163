"""Held jobs: an add to Redis whose outcome is unknown waits in the outbox, not locally.

``ils_outbox.held_since_ms``: set on a row whose job may already be in Redis (the add
timed out or the connection dropped after the command went out). Such a row is only
ever resolved into Redis (by job id, idempotently), never run from the local store.
``ils_outbox.id`` widens to 255 characters: held rows keep the job's own id, which may
be a caller's custom id. ``ils_fallback_counts``: how held jobs were resolved, summed
over every process (health and ``/metrics`` read it).

Revision ID: 0012_outbox_held
Revises: 0011_schedules
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_outbox_held"
down_revision = "0011_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: a plain ALTER on PostgreSQL, a table rebuild on SQLite (which cannot
    # alter a column's type; the outbox is small, usually empty).
    with op.batch_alter_table("ils_outbox") as batch:
        batch.add_column(sa.Column("held_since_ms", sa.BigInteger(), nullable=True))
        batch.alter_column("id", type_=sa.String(length=255), existing_type=sa.String(length=40))
    op.create_table(
        "ils_fallback_counts",
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("outcome"),
    )


def downgrade() -> None:
    op.drop_table("ils_fallback_counts")
    # Held rows cannot be represented before this revision: they would run locally.
    op.execute("DELETE FROM ils_outbox WHERE held_since_ms IS NOT NULL OR length(id) > 40")
    with op.batch_alter_table("ils_outbox") as batch:
        batch.alter_column("id", type_=sa.String(length=40), existing_type=sa.String(length=255))
        batch.drop_column("held_since_ms")
