"""Alembic environment of the registry.

The server runs the migrations itself (``fota_server.db.migrate.upgrade``, at start and by
``fota-server migrate``) and hands its connection over in ``config.attributes["connection"]``, inside
a transaction that holds the migration lock. Without one (Alembic's own command line, for writing a
new revision), ``sqlalchemy.url`` of the Alembic config names the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from fota_server.db.schema import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=True,  # SQLite alters tables by copying them
                      transactional_ddl=True)  # SQLite can, and a half-migrated registry must not stay
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as c:
        _run(c)
