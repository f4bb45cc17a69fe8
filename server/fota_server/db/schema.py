"""The registry's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

The migrations under ``fota_server/migrations`` create exactly these tables; the test suite
compares a migrated database with this metadata. Timestamps are ISO 8601 text (``now_iso``), as the
API returns them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, MetaData, Table, Text, text

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
