"""Statements of the check-in path, compiled once and run on the driver's own connection.

    >>> from sqlalchemy import bindparam, select
    >>> from fota_server.db.engine import open_database
    >>> from fota_server.db.schema import devices
    >>> db = open_database(":memory:")
    >>> count = Prepared(select(devices.c.device_id).where(devices.c.device_id == bindparam("d")),
    ...                  db.engine.dialect)
    >>> count.sql
    'SELECT devices.device_id \\nFROM devices \\nWHERE devices.device_id = ?'

A check-in runs three statements; SQLAlchemy's work around each execution (execution context,
result object, parameter processing) costs more CPU than SQLite's or psycopg's own, and a check-in
is the request a fleet sends most. A :class:`Prepared` statement is still written once in Core: its
SQL text, parameter order and literal values come from SQLAlchemy's compiler for the engine's
dialect; only the execution skips the per-call machinery. It suits statements whose parameters
and results need no type conversion (text and integers), run on a connection that SQLAlchemy's
pool handed out, which stays in charge of transactions and reconnection
(:meth:`fota_server.db.engine.Database.autocommit` turns the driver's connection errors into
:class:`~fota_server.db.engine.DatabaseUnavailable` and discards the connection).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import Executable


class Prepared:
    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql: str = compiled.string
        # literal values of the statement itself (status = 'reverted', LIMIT 1, checkins + 1)
        self._defaults = {name: bind.effective_value for bind, name in compiled.bind_names.items()
                          if not bind.required}
        self._order = compiled.positiontup if compiled.positional else None

    def params(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = self._defaults | values
        return tuple(merged[k] for k in self._order) if self._order is not None else merged

    def execute(self, conn: Connection, values: dict[str, Any]) -> Any:
        """Run on ``conn``'s driver connection; the driver's cursor (``fetchone()`` gives a tuple)."""
        return conn.connection.driver_connection.execute(self.sql, self.params(values))  # type: ignore[union-attr]
