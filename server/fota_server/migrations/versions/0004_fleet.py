"""The fleet: device groups (reported and set), pins, maintenance windows, rollouts and their history.

Revision ID: 0004_fleet
Revises: 0003_device_hits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_fleet"
down_revision = "0003_device_hits"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("devices", sa.Column("reported_group", sa.Text()))
    op.add_column("updates", sa.Column("rollout_id", sa.Integer()))
    epoch = op.create_table(
        "fleet_epoch",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.bulk_insert(epoch, [{"name": "epoch", "value": 0}])
    op.create_table(
        "device_settings",
        sa.Column("device_id", sa.Text(), primary_key=True),
        sa.Column("group_name", sa.Text()),
        sa.Column("pin_version", sa.Text()),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
    )
    op.create_table(
        "group_settings",
        sa.Column("group_name", sa.Text(), primary_key=True),
        sa.Column("pin_version", sa.Text()),
        sa.Column("window_start", sa.Integer()),
        sa.Column("window_end", sa.Integer()),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.Text(), nullable=False),
        sa.Column("target_group", sa.Text()),
        sa.Column("target_devices", sa.Text()),
        sa.Column("stages", sa.Text(), nullable=False),
        sa.Column("cutoffs", sa.Text(), nullable=False),
        sa.Column("success_threshold", sa.Float(), nullable=False),
        sa.Column("soak_s", sa.Integer(), nullable=False),
        sa.Column("failure_threshold", sa.Float(), nullable=False),
        sa.Column("min_sample", sa.Integer(), nullable=False),
        sa.Column("max_consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("current_stage", sa.Integer(), nullable=False),
        sa.Column("stage_opened_at", sa.Float(), nullable=False),
        sa.Column("advance_due_at", sa.Float()),
        sa.Column("admitted", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "rollout_stages",
        sa.Column("rollout_id", _ID, sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer()),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.Float()),
        sa.PrimaryKeyConstraint("rollout_id", "stage"),
    )
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", _ID, sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("update_id", _ID, nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )
    op.create_table(
        "rollout_transitions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", _ID, sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text()),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("rollout_transitions_by_rollout", "rollout_transitions", ["rollout_id", "id"])
    op.create_table(
        "retries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("after_update_id", _ID, nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("retries_by_device", "retries", ["device_id", "version"])


def downgrade() -> None:
    op.drop_index("retries_by_device", table_name="retries")
    op.drop_table("retries")
    op.drop_index("rollout_transitions_by_rollout", table_name="rollout_transitions")
    for table in ("rollout_transitions", "rollout_devices", "rollout_stages", "rollouts", "group_settings",
                  "device_settings", "fleet_epoch"):
        op.drop_table(table)
    with op.batch_alter_table("updates") as batch:
        batch.drop_column("rollout_id")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reported_group")
