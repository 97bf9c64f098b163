"""Remakes: an order may name the earlier order it makes again.

``orders.remake_of_id`` (indexed): the AI worker's operations insights count remakes
per lab and period (the remake rate), and the API checks a remake names an order of
the same practice, patient and lab.

Revision ID: 0009_remakes
Revises: 0008_workers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_remakes"
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


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index(batch.f("ix_orders_remake_of_id"))
        batch.drop_constraint(batch.f("fk_orders_remake_of_id_orders"), type_="foreignkey")
        batch.drop_column("remake_of_id")
