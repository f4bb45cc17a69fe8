"""The per-device rate limit's counters in the database, shared by every server process.

Revision ID: 0003_device_hits
Revises: 0002_sync_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_device_hits"
down_revision = "0002_sync_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_hits",
        sa.Column("device_id", sa.Text(), primary_key=True),
        sa.Column("window_start", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_hits")
