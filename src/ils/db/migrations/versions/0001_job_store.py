"""The local job store: jobs, their log lines and per-queue state.

Revision ID: 0001_job_store
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_job_store"
down_revision = None
branch_labels = None
depends_on = None

# An autoincrementing 64-bit key on PostgreSQL (BIGSERIAL) that is the rowid on SQLite.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ils_jobs",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_made", sa.Integer(), nullable=False),
        sa.Column("attempts_started", sa.Integer(), nullable=False),
        sa.Column("stalled_count", sa.Integer(), nullable=False),
        sa.Column("backoff_delay_ms", sa.BigInteger(), nullable=False),
        sa.Column("delay_ms", sa.BigInteger(), nullable=False),
        sa.Column("run_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("lock_token", sa.String(length=255), nullable=True),
        sa.Column("lock_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("failed_reason", sa.Text(), nullable=True),
        sa.Column("stacktrace", sa.JSON(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("processed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ils_jobs")),
        sa.UniqueConstraint("queue", "id", name=op.f("uq_ils_jobs_queue")),
    )
    op.create_index(
        "ix_ils_jobs_fetch", "ils_jobs", ["queue", "state", "priority", "run_at_ms", "seq"]
    )
    op.create_index("ix_ils_jobs_due", "ils_jobs", ["queue", "state", "run_at_ms"])
    op.create_index("ix_ils_jobs_finished", "ils_jobs", ["queue", "state", "finished_at_ms", "seq"])
    op.create_table(
        "ils_job_logs",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("job_seq", SEQ, nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_seq"],
            ["ils_jobs.seq"],
            name=op.f("fk_ils_job_logs_job_seq_ils_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ils_job_logs")),
    )
    op.create_index(op.f("ix_ils_job_logs_job_seq"), "ils_job_logs", ["job_seq"])
    op.create_table(
        "ils_queue_state",
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("rl_window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("rl_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_ils_queue_state")),
    )


def downgrade() -> None:
    op.drop_table("ils_queue_state")
    op.drop_index(op.f("ix_ils_job_logs_job_seq"), table_name="ils_job_logs")
    op.drop_table("ils_job_logs")
    op.drop_index("ix_ils_jobs_finished", table_name="ils_jobs")
    op.drop_index("ix_ils_jobs_due", table_name="ils_jobs")
    op.drop_index("ix_ils_jobs_fetch", table_name="ils_jobs")
    op.drop_table("ils_jobs")
