"""Opening the registry database: a SQLite file (the embedded default) or PostgreSQL (psycopg 3).

    >>> db = open_database(":memory:")
    >>> db.backend, db.describe()
    ('sqlite', 'sqlite:// (in memory)')
    >>> with db.write() as conn:
    ...     conn.exec_driver_sql("CREATE TABLE t (x INTEGER)").rowcount
    -1

``target`` is a ``Path`` or a plain path (a SQLite file, created with its folder), ``":memory:"``,
or a URL: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://user@host/db``
(``postgres://`` and ``postgresql+psycopg://`` too; other drivers are refused). URLs are only ever
shown through :meth:`Database.describe`, which hides the password.

Transactions: :meth:`Database.write` is one writing transaction (SQLite: ``BEGIN IMMEDIATE``, so two
processes on one file take turns instead of failing on a lock upgrade; PostgreSQL: row locks taken
by the statements). :meth:`Database.autocommit` runs single statements, each its own transaction.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fota_formats.config import redact_url
from fota_formats.errors import FotaError
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_S = 30.0
PG_DRIVER = "postgresql+psycopg"


class DatabaseError(FotaError):
    """The registry database cannot be opened, migrated or used; the message names it (no password)."""


class DatabaseUnavailable(DatabaseError):
    """The database went away while the server ran (restarted, network down): the statement did
    not run; the pool reconnects on the next use."""


def to_url(target: Path | str) -> URL:
    """The SQLAlchemy URL of a registry target (a path, ``":memory:"`` or a URL)."""
    if isinstance(target, Path):
        return URL.create("sqlite", database=str(target))
    if target in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return URL.create("sqlite")
    if "://" not in target:
        return URL.create("sqlite", database=target)
    try:
        url = make_url(target)
    except ArgumentError:
        raise DatabaseError(f"Failed to open the registry database: {redact_url(target)!r} is not a "
                            "database URL") from None
    if url.drivername in ("postgresql", "postgres", PG_DRIVER):
        return url.set(drivername=PG_DRIVER)
    if url.drivername == "sqlite":
        return url
    raise DatabaseError(f"Failed to open the registry database {redact_url(target)}: the driver "
                        f"{url.drivername!r} is not supported (use sqlite:///path or postgresql://...)")


@dataclass
class Database:
    """An engine and what the registry needs to know about it."""

    engine: Engine  # transactions (Database.write)
    url: URL
    _lock: Any = field(default_factory=contextlib.nullcontext, repr=False)
    # Single statements (Database.autocommit): SQLite's driver is in autocommit mode anyway; for
    # PostgreSQL a pool of its own, whose connections stay in autocommit mode (switching a pooled
    # connection's mode at each checkout and back costs more than the query).
    auto_engine: Engine | None = field(default=None, repr=False)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def memory(self) -> bool:
        return self.backend == "sqlite" and self.url.database in (None, "", ":memory:")

    def describe(self) -> str:
        if self.memory:
            return "sqlite:// (in memory)"
        return shown(self.url)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One writing transaction, committed when the block ends without an exception."""
        with self._lock, self._unavailable(), self.engine.connect() as conn:
            if self.backend == "sqlite":
                # The driver runs in autocommit mode (no implicit BEGIN): take the write lock now, so
                # two processes on one file queue up (busy_timeout) instead of failing on a lock upgrade.
                conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection in autocommit mode: each statement is a transaction of its own, which saves
        a BEGIN and a COMMIT (PostgreSQL: two round trips). For queries, and writes of one statement."""
        with self._lock, self._unavailable(), (self.auto_engine or self.engine).connect() as conn:
            try:
                yield conn
            except self._driver_error as e:  # from a fota_server.db.prepared statement
                conn.invalidate()  # not back into the pool: the next use reconnects
                raise DatabaseUnavailable(f"the registry database {self.describe()} is unavailable: "
                                          f"{reason_of(e)}") from None

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as e:
            raise DatabaseUnavailable(f"the registry database {self.describe()} is unavailable: "
                                      f"{reason_of(e)}") from None

    @property
    def _driver_error(self) -> type[Exception]:
        """The driver's OperationalError (a lost connection, a server that went away)."""
        return self.engine.dialect.loaded_dbapi.OperationalError  # type: ignore[no-any-return]

    def close(self) -> None:
        self.engine.dispose()
        if self.auto_engine is not None:
            self.auto_engine.dispose()


def _sqlite_events(engine: Engine, file: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit; Database.write begins its transactions
        cur = dbapi_conn.cursor()
        if file:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()


def open_database(target: Path | str) -> Database:
    """Connect to the registry database (no schema work: see ``fota_server.db.migrate``)."""
    url = to_url(target)
    try:
        if url.drivername == "sqlite":
            memory = url.database in (None, "", ":memory:")
            if memory:
                engine = create_engine("sqlite://", poolclass=StaticPool,
                                       connect_args={"check_same_thread": False})
                db = Database(engine, url, threading.RLock())
            else:
                Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False,
                                                          "timeout": SQLITE_BUSY_TIMEOUT_S})
                db = Database(engine, url)
            _sqlite_events(engine, file=not memory)
        else:
            args = {"connect_timeout": 10, "application_name": "fota-server"}
            engine = create_engine(url, pool_size=2, max_overflow=6, pool_recycle=1800, connect_args=args)
            auto = create_engine(url, pool_size=3, max_overflow=4, pool_recycle=1800, connect_args=args,
                                 isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
            db = Database(engine, url, auto_engine=auto)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OSError as e:
        raise DatabaseError(f"Failed to open the registry database {shown(url)}: {e.strerror or e}") from None
    except SQLAlchemyError as e:
        raise DatabaseError(f"Failed to open the registry database {shown(url)}: {reason_of(e)}") from None
    return db


def shown(url: URL) -> str:
    """The URL for messages: password hidden, in the authority and in a ``password=`` parameter."""
    return redact_url(url.render_as_string(hide_password=False))


def reason_of(e: Exception) -> str:
    """The driver's own message (first line), without SQLAlchemy's statement dump and links."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return text.splitlines()[0] if text else type(e).__name__
