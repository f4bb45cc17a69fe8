"""What the bridge reads from its STM32's INFO at each check-in: die temperature, uptime, the
journal's anti-rollback floor and the running image's signing key.

Revision ID: 0005_device_health
Revises: 0004_fleet
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_device_health"
down_revision = "0004_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("temp_centi", sa.Integer()))
    u32 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # 0..2**32 - 1 needs more than int4
    op.add_column("devices", sa.Column("uptime_ms", u32))
    op.add_column("devices", sa.Column("security_counter", u32))
    op.add_column("devices", sa.Column("key_id", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("key_id")
        batch.drop_column("security_counter")
        batch.drop_column("uptime_ms")
        batch.drop_column("temp_centi")
