"""The registry's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

The migrations under ``fota_server/migrations`` create exactly these tables; the test suite
compares a migrated database with this metadata. Timestamps are ISO 8601 text (``now_iso``), as the
API returns them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

metadata = MetaData()

devices = Table(
    "devices", metadata,
    Column("device_id", Text, primary_key=True),
    Column("first_seen", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("checkins", Integer, nullable=False, server_default=text("0")),
    Column("running_slot", Text),
    Column("running_version", Text),
    Column("slot_a_state", Text),
    Column("slot_a_version", Text),
    Column("slot_b_state", Text),
    Column("slot_b_version", Text),
    Column("reported_group", Text),  # the group the bridge reports in its check-in (an operator's wins)
    Column("temp_centi", Integer),  # the STM32's die temperature at the last check-in, 0.01 degC
    Column("uptime_ms", BigInteger().with_variant(Integer(), "sqlite")),  # its application's uptime then
    Column("security_counter", BigInteger().with_variant(Integer(), "sqlite")),  # its anti-rollback floor
    Column("key_id", Text),  # the signing key of the image it ran then: 8 hex digits of its KEYHASH
)

updates = Table(
    "updates", metadata,
    # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT (ids never reused); PostgreSQL: a bigint identity
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("device_id", Text, ForeignKey("devices.device_id"), nullable=False),
    Column("version", Text, nullable=False),
    Column("target_slot", Text, nullable=False),
    Column("file", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("downgrade", Boolean(create_constraint=False).with_variant(Integer(), "sqlite"), nullable=False),
    Column("from_slot", Text, nullable=False),
    Column("from_version", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("offset", Integer, nullable=False, server_default=text("0")),
    Column("outcome", Text),
    Column("reason", Text),
    Column("duration_ms", Integer),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("result_slot", Text),
    Column("result_version", Text),
    Column("rollout_id", Integer),  # the rollout that made this offer (none: the release offered to all)
    sqlite_autoincrement=True,
)
Index("updates_by_device", updates.c.device_id, updates.c.id)

# The outcome of the last sync from S3, whichever server process ran it, so that every worker's
# /status tells the same (one row, name 'last').
sync_state = Table(
    "sync_state", metadata,
    Column("name", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("local_version", Text),
    Column("remote_version", Text),
    Column("at", Text, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("instance", Text, nullable=False),
)

# The per-device rate limit (fota_server.ratelimit), shared by every server process: the check-ins
# and reports of a device in its current fixed window (window_start: Unix seconds). No foreign key:
# a request is counted before its device row is written.
device_hits = Table(
    "device_hits", metadata,
    Column("device_id", Text, primary_key=True),
    Column("window_start", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("hits", Integer, nullable=False),
)


_ID = BigInteger().with_variant(Integer(), "sqlite")

# --- the fleet: groups, pins, maintenance windows, rollouts (fota_server.fleet) ---------------------
# One counter row ('epoch'), raised by every change of the fleet's configuration (a rollout created,
# paused, advanced...; a group, pin or window set): each server process keeps the configuration in
# memory and reloads it when the epoch that a check-in returns has moved.
fleet_epoch = Table(
    "fleet_epoch", metadata,
    Column("name", Text, primary_key=True),
    Column("value", Integer, nullable=False),
)

# What an operator set for one device (a device need not have checked in yet).
device_settings = Table(
    "device_settings", metadata,
    Column("device_id", Text, primary_key=True),
    Column("group_name", Text),
    Column("pin_version", Text),
    Column("updated_at", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
)

# What an operator set for one group: a pin, a maintenance window (minutes of the UTC day).
group_settings = Table(
    "group_settings", metadata,
    Column("group_name", Text, primary_key=True),
    Column("pin_version", Text),
    Column("window_start", Integer),
    Column("window_end", Integer),
    Column("updated_at", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
)

rollouts = Table(
    "rollouts", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("target_kind", Text, nullable=False),  # all | group | devices
    Column("target_group", Text),
    Column("target_devices", Text),  # JSON list of device ids
    Column("stages", Text, nullable=False),  # JSON list of {"percent": p} or {"count": n}
    Column("cutoffs", Text, nullable=False),  # JSON: the percentage stages' cutoffs (fota_server.rollout)
    Column("success_threshold", Float, nullable=False),
    Column("soak_s", Integer, nullable=False),
    Column("failure_threshold", Float, nullable=False),
    Column("min_sample", Integer, nullable=False),
    Column("max_consecutive_failures", Integer, nullable=False),
    Column("state", Text, nullable=False),  # active | paused | aborted | completed
    Column("current_stage", Integer, nullable=False),
    Column("stage_opened_at", Float, nullable=False),  # Unix seconds (the server's clock)
    Column("advance_due_at", Float),  # Unix seconds: when the next stage opens (its stage succeeded)
    Column("admitted", Integer, nullable=False),  # devices offered the release by this rollout
    Column("consecutive_failures", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    sqlite_autoincrement=True,
)

# Outcome counters of one stage, kept as reports arrive (no scan of the updates).
rollout_stages = Table(
    "rollout_stages", metadata,
    Column("rollout_id", _ID, ForeignKey("rollouts.id"), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("expected", Integer),  # devices the stage is for: its count, or its share of those known
    Column("devices", Integer, nullable=False),
    Column("confirmed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("opened_at", Float),
    PrimaryKeyConstraint("rollout_id", "stage"),
)

# One row per device that a rollout offered its release to: its stage and its latest outcome.
rollout_devices = Table(
    "rollout_devices", metadata,
    Column("rollout_id", _ID, ForeignKey("rollouts.id"), nullable=False),
    Column("device_id", Text, nullable=False),
    Column("stage", Integer, nullable=False),
    Column("status", Text, nullable=False),  # offered | confirmed | failed | reverted
    Column("update_id", _ID, nullable=False),
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("rollout_id", "device_id"),
)

# Every change of a rollout's state or stage: who (an operator's name, or "server"), why, when.
rollout_transitions = Table(
    "rollout_transitions", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("rollout_id", _ID, ForeignKey("rollouts.id"), nullable=False),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("stage", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("rollout_transitions_by_rollout", rollout_transitions.c.rollout_id, rollout_transitions.c.id)

# An operator's permission to offer a device a release again that it reverted: reverted updates
# up to after_update_id no longer count.
retries = Table(
    "retries", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("device_id", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("after_update_id", _ID, nullable=False),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("retries_by_device", retries.c.device_id, retries.c.version)
