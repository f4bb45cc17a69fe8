"""The registry as the server created it before migrations existed: devices and updates.

A SQLite registry made by that server (tables present, no ``alembic_version``) is recognised by
``fota_server.db.migrate`` and stamped with this revision instead of being created again.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Text(), primary_key=True),
        sa.Column("first_seen", sa.Text(), nullable=False),
        sa.Column("last_seen", sa.Text(), nullable=False),
        sa.Column("checkins", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("running_slot", sa.Text()),
        sa.Column("running_version", sa.Text()),
        sa.Column("slot_a_state", sa.Text()),
        sa.Column("slot_a_version", sa.Text()),
        sa.Column("slot_b_state", sa.Text()),
        sa.Column("slot_b_version", sa.Text()),
    )
    op.create_table(
        "updates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("device_id", sa.Text(), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("target_slot", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("downgrade", sa.Boolean(create_constraint=False).with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("from_slot", sa.Text(), nullable=False),
        sa.Column("from_version", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("outcome", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.Text()),
        sa.Column("result_slot", sa.Text()),
        sa.Column("result_version", sa.Text()),
        sqlite_autoincrement=True,
    )
    op.create_index("updates_by_device", "updates", ["device_id", "id"])


def downgrade() -> None:
    op.drop_index("updates_by_device", table_name="updates")
    op.drop_table("updates")
    op.drop_table("devices")
