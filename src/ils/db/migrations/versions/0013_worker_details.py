"""Worker details: what each worker process runs, for the workers view.

``ils_workers`` gains the process's version, its concurrency per queue (JSON), the
jobs it runs now (JSON list), the jobs done and failed since it started, and
``stopped_at_ms``: a worker that stops cleanly is marked instead of deleted, so the
view can list recently gone workers (the store deletes rows an hour after their last
heartbeat). Every new column is nullable or has a default, so a worker of the
previous release keeps writing its heartbeat during a rolling upgrade.

Revision ID: 0013_worker_details
Revises: 0012_outbox_held
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_worker_details"
down_revision = "0012_outbox_held"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: plain ALTERs on PostgreSQL, a table rebuild on SQLite (the table
    # holds one row per worker process: small).
    with op.batch_alter_table("ils_workers") as batch:
        batch.add_column(sa.Column("version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("concurrency", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("running", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("jobs_done", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("jobs_failed", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("stopped_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # Stopped rows would read as live workers before this revision: drop them first.
    op.execute("DELETE FROM ils_workers WHERE stopped_at_ms IS NOT NULL")
    with op.batch_alter_table("ils_workers") as batch:
        batch.drop_column("stopped_at_ms")
        batch.drop_column("jobs_failed")
        batch.drop_column("jobs_done")
        batch.drop_column("running")
        batch.drop_column("concurrency")
        batch.drop_column("version")
