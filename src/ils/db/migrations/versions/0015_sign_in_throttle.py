"""Sign-in throttling: failed sign-ins per account and per client address.

``sign_in_throttles``: one row per normalised e-mail (``scope = 'account'``, whether
or not a user has it) or client address (``'address'``) with its failures since the
last reset, the earliest time of the next attempt and the end of a lock, all in epoch
milliseconds. In the database so that every web process and machine counts the same
failures. Indexed by the last failure for the purge of forgotten rows.

Revision ID: 0015_sign_in_throttle
Revises: 0014_lens_codes_and_sight_test
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_sign_in_throttle"
down_revision = "0014_lens_codes_and_sight_test"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_failure_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_sign_in_throttles")),
    )
    op.create_index(
        "ix_sign_in_throttles_last_failure", "sign_in_throttles", ["last_failure_at_ms"]
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttles")
