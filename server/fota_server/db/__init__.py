"""The registry's data access layer on SQLAlchemy 2: engines (SQLite or PostgreSQL through psycopg),
the schema, Alembic migrations and the sync lock. ``fota_server.registry`` is its only user."""

from fota_server.db.engine import Database, DatabaseError, DatabaseUnavailable, open_database
from fota_server.db.locks import SyncBusy
from fota_server.db.migrate import current, head, upgrade

__all__ = ["Database", "DatabaseError", "DatabaseUnavailable", "SyncBusy", "current", "head", "open_database",
           "upgrade"]
