"""The sent-mail log of the e-mail worker (``ils.domain.mail``).

One row per message; its unique ``message_id`` is how a retried job knows what it
already sent.

Revision ID: 0004_mail_messages
Revises: 0003_platform
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_mail_messages"
down_revision = "0003_platform"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.String(length=100), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("recipient_company_id", sa.String(length=32), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reply", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_mail_messages_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_company_id"],
            ["companies.id"],
            name=op.f("fk_mail_messages_recipient_company_id_companies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_messages_message_id")),
    )
    op.create_index(
        "ix_mail_messages_company_created",
        "mail_messages",
        ["company_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_mail_messages_recipient_company_created",
        "mail_messages",
        ["recipient_company_id", "created_at"],
        unique=False,
    )
    op.create_index("ix_mail_messages_created_at", "mail_messages", ["created_at"], unique=False)
    op.create_index(op.f("ix_mail_messages_job_id"), "mail_messages", ["job_id"], unique=False)


def downgrade() -> None:
    # Dropping the table drops its indexes and constraints.
    op.drop_table("mail_messages")
