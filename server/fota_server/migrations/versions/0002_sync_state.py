"""The last sync's outcome in the database, shared by every server process.

Revision ID: 0002_sync_state
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sync_state"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_state",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("local_version", sa.Text()),
        sa.Column("remote_version", sa.Text()),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
