"""Orders of one side, newest first: each side's indexes end in ``created_at``.

``GET /api/orders`` lists a company's orders newest first, a page at a time, with or
without a status. With indexes on (side, status) only, every list read every order of
the company and sorted them all for one page: 15 ms of CPU a request for a lab with
20,000 orders on SQLite, growing with its history (bench/request_cpu.py
--more-orders). (side, created_at) serves the plain list and (side, status,
created_at), which replaces (side, status), the list of one status: each reads its
page in order and stops.

Revision ID: 0016_orders_by_side_and_date
Revises: 0015_sign_in_throttle
"""

from __future__ import annotations

from alembic import op

revision = "0016_orders_by_side_and_date"
down_revision = "0015_sign_in_throttle"
branch_labels = None
depends_on = None

SIDES = ("company", "lab")


def upgrade() -> None:
    for side in SIDES:
        op.drop_index(f"ix_orders_{side}_status", table_name="orders")
        column = f"{side}_id"
        op.create_index(f"ix_orders_{side}_created", "orders", [column, "created_at"])
        op.create_index(
            f"ix_orders_{side}_status_created", "orders", [column, "status", "created_at"]
        )


def downgrade() -> None:
    for side in SIDES:
        op.drop_index(f"ix_orders_{side}_status_created", table_name="orders")
        op.drop_index(f"ix_orders_{side}_created", table_name="orders")
        op.create_index(f"ix_orders_{side}_status", "orders", [f"{side}_id", "status"])
