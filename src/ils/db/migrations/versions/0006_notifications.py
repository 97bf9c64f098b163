"""In-app notifications delivered live: the four priorities, urgent e-mail, replay order.

* ``notifications.priority`` takes the queue's four levels (``urgent``, ``high``,
  ``medium``, ``low``); rows written with the old ``normal`` become ``medium``.
* ``notifications.emailed_at``: when an unread urgent notification was also sent as
  an e-mail (once).
* ``notifications.link`` holds what a job payload may carry (2,000 characters).
* ``ix_notifications_user_created``: a user's newest first, and the replay of what a
  reconnecting live stream missed (``created_at`` after the last one it saw).

Revision ID: 0006_notifications
Revises: 0005_documents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_notifications"
down_revision = "0005_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE notifications SET priority = 'medium' WHERE priority = 'normal'")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column(
            "link", type_=sa.String(length=2000), existing_type=sa.String(length=500)
        )
    op.create_index(
        "ix_notifications_user_created", "notifications", ["user_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_user_created", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("emailed_at")
        batch.alter_column(
            "link", type_=sa.String(length=500), existing_type=sa.String(length=2000)
        )
    op.execute("UPDATE notifications SET priority = 'normal' WHERE priority = 'medium'")
    op.execute("UPDATE notifications SET priority = 'high' WHERE priority = 'urgent'")
