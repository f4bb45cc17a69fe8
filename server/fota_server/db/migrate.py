"""Schema migrations of the registry with Alembic: at server start and by ``fota-server migrate``.

    >>> from fota_server.db.engine import open_database
    >>> db = open_database(":memory:")
    >>> upgrade(db)
    (None, '0005_device_health')
    >>> current(db) == head()
    True

One process migrates at a time: PostgreSQL's transaction-level advisory lock, SQLite's write lock
(``BEGIN IMMEDIATE``); the migrations run inside that transaction (both engines have transactional
DDL), so a failed migration leaves the schema as it was. A registry made before migrations existed
(SQLite tables, no ``alembic_version``) is checked against the initial revision and stamped with
it, keeping every row. A database at a revision this server does not know (made by a newer server)
is refused rather than touched.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from fota_server.db.engine import Database, DatabaseError, open_database, reason_of

INITIAL = "0001_initial"
# The tables and columns of the initial revision: what a registry from before migrations must have.
_INITIAL_COLUMNS = {
    "devices": {"device_id", "first_seen", "last_seen", "checkins", "running_slot", "running_version",
                "slot_a_state", "slot_a_version", "slot_b_state", "slot_b_version"},
    "updates": {"id", "device_id", "version", "target_slot", "file", "size", "sha256", "downgrade",
                "from_slot", "from_version", "status", "offset", "outcome", "reason", "duration_ms",
                "created_at", "updated_at", "finished_at", "result_slot", "result_version"},
}


def lock_key(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MIGRATE_LOCK_KEY = lock_key("fota-server: schema migration")


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("fota_server") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def current(db: Database) -> str | None:
    """The schema revision of the database (None: no migration recorded)."""
    with db.autocommit() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return heads[0] if heads else None


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; the revisions (before, after)."""
    try:
        with db.write() as conn:
            if db.backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
            return _upgrade(db, conn)
    except SQLAlchemyError as e:
        raise DatabaseError(f"Failed to migrate the registry database {db.describe()}: "
                            f"{reason_of(e)}") from None


def migrate_registry(target: Path | str) -> str:
    """``fota-server migrate``: open the registry, upgrade it, say what was done."""
    db = open_database(target)
    try:
        before, after = upgrade(db)
    finally:
        db.close()
    if before == after:
        return f"registry {db.describe()}: schema already at {after}"
    return f"registry {db.describe()}: schema upgraded from {before or 'none'} to {after}"


def _upgrade(db: Database, conn: Connection) -> tuple[str | None, str]:
    cfg = alembic_config(conn)
    script = ScriptDirectory.from_config(cfg)
    newest = script.get_current_head()
    assert newest is not None
    ctx = MigrationContext.configure(conn)
    heads = ctx.get_current_heads()
    known = {s.revision for s in script.walk_revisions()}
    unknown = [h for h in heads if h not in known]
    if unknown:
        raise DatabaseError(
            f"Failed to migrate the registry database {db.describe()}: it is at schema revision "
            f"{', '.join(unknown)}, which this server does not know (newest here: {newest}); a newer "
            "server made it: run that one, or restore a backup")
    before = heads[0] if heads else None
    if before is None and _adopt_unversioned(db, conn, ctx, script):
        before = INITIAL
    if before != newest:
        command.upgrade(cfg, "head")
    return before, newest


def _adopt_unversioned(db: Database, conn: Connection, ctx: MigrationContext,
                       script: ScriptDirectory) -> bool:
    """A registry from before migrations: stamp it with the initial revision if it matches (True)."""
    tables = set(inspect(conn).get_table_names())
    present = tables & set(_INITIAL_COLUMNS)
    if not present:
        return False  # an empty database: the migrations create everything
    for table, want in _INITIAL_COLUMNS.items():
        have = {c["name"] for c in inspect(conn).get_columns(table)} if table in tables else set()
        if have != want:
            missing, extra = sorted(want - have), sorted(have - want)
            raise DatabaseError(
                f"Failed to migrate the registry database {db.describe()}: it has registry tables but no "
                f"recorded schema revision, and table {table!r} is not the initial schema "
                f"(missing columns: {', '.join(missing) or 'none'}; "
                f"unknown columns: {', '.join(extra) or 'none'})")
    ctx.stamp(script, INITIAL)
    return True
