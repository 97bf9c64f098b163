"""Schedules: jobs on a calendar (cron or interval, in a time zone).

``ils_schedules``: one row per schedule, the job system's own like ``ils_jobs`` (the
local claimers compare-and-set ``next_run_at_ms``; the management API reads and
writes the rest). Indexed for the claimers' "due now" query and per company.

Revision ID: 0011_schedules
Revises: 0010_order_tracings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_schedules"
down_revision = "0010_order_tracings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ils_schedules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("builtin", sa.String(length=32), nullable=True),
        sa.Column("cron", sa.String(length=120), nullable=True),
        sa.Column("every_s", sa.BigInteger(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("start_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("catch_up", sa.String(length=8), nullable=False),
        sa.Column("jobs", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_run_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_run_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ils_schedules")),
    )
    op.create_index("ix_ils_schedules_due", "ils_schedules", ["paused", "next_run_at_ms"])
    op.create_index("ix_ils_schedules_company", "ils_schedules", ["company_id"])


def downgrade() -> None:
    op.drop_table("ils_schedules")
