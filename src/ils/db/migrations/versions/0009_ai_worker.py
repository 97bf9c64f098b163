"""The AI worker: remakes on orders, and the job that wrote each chat answer.

* ``orders.remake_of_id`` (indexed): an order may name the earlier order it makes
  again; the AI worker's insights count remakes per period (the remake rate), and
  the API checks a remake names an order of the same practice, patient and lab.
* ``messages.job_id`` (unique): the chat-response job that wrote an answer, so a
  retried job finds its answer instead of adding a second one.

Revision ID: 0009_ai_worker
Revises: 0008_workers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ai_worker"
down_revision = "0008_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("remake_of_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_orders_remake_of_id_orders"), "orders", ["remake_of_id"], ["id"]
        )
        batch.create_index(batch.f("ix_orders_remake_of_id"), ["remake_of_id"], unique=False)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("job_id", sa.String(length=255), nullable=True))
        batch.create_unique_constraint(batch.f("uq_messages_job_id"), ["job_id"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(batch.f("uq_messages_job_id"), type_="unique")
        batch.drop_column("job_id")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index(batch.f("ix_orders_remake_of_id"))
        batch.drop_constraint(batch.f("fk_orders_remake_of_id_orders"), type_="foreignkey")
        batch.drop_column("remake_of_id")
