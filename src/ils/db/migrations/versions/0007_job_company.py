"""Jobs carry the company they were made for; the audit log of queue operations.

* ``ils_jobs.company_id`` and ``ix_ils_jobs_company`` (queue, company_id, state, seq):
  a company_admin's job lists, newest first, without scanning other companies' jobs.
* ``ils_outbox.company_id``: the company travels with a job through the outbox to
  Redis (where it is stored in the job's options).
* ``audit_log``: who retried, removed, cleaned, promoted, paused or resumed what.

Revision ID: 0007_job_company
Revises: 0006_notifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_job_company"
down_revision = "0006_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ils_jobs", sa.Column("company_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_ils_jobs_company", "ils_jobs", ["queue", "company_id", "state", "seq"], unique=False
    )
    op.add_column("ils_outbox", sa.Column("company_id", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_email", sa.String(length=320), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_company_at", "audit_log", ["company_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("ils_outbox") as batch:
        batch.drop_column("company_id")
    op.drop_index("ix_ils_jobs_company", table_name="ils_jobs")
    with op.batch_alter_table("ils_jobs") as batch:
        batch.drop_column("company_id")
