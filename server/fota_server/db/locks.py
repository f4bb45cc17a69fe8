"""One sync at a time across server processes and hosts.

    with sync_lock(db, firmware_dir, timeout_s=120):    # doctest: +SKIP
        sync_once(store, folder)

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``, polled until ``timeout_s``)
held on a connection of its own, so every process and host sharing the database takes turns; it is
released by ``pg_advisory_unlock``, or by PostgreSQL itself when the process dies. SQLite (one
host): an OS file lock on ``<firmware_dir>/.sync.lock`` (released by the kernel when the process
dies). A lock not had within ``timeout_s`` raises :class:`SyncBusy`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout
from fota_formats.errors import FotaError
from sqlalchemy import text

from fota_server.db.engine import Database
from fota_server.db.migrate import lock_key

SYNC_LOCK_KEY = lock_key("fota-server: sync from S3")
SYNC_LOCK_FILE = ".sync.lock"
POLL_S = 0.05

log = logging.getLogger("fota_server")


class SyncBusy(FotaError):
    """Another server process kept the sync lock for longer than we would wait."""


@contextlib.contextmanager
def sync_lock(db: Database, folder: Path, timeout_s: float) -> Iterator[None]:
    if db.backend == "postgresql":
        with _advisory(db, timeout_s):
            yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / SYNC_LOCK_FILE), timeout=timeout_s)
    try:
        lock.acquire(poll_interval=POLL_S)
    except Timeout:
        raise SyncBusy(f"Failed to sync: another server process has been syncing {folder} for more than "
                       f"{timeout_s:.0f} s (lock file {lock.lock_file})") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _advisory(db: Database, timeout_s: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout_s
    with db.engine.connect() as conn:
        said = False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SYNC_LOCK_KEY}).scalar():
            conn.rollback()  # no transaction stays open while we wait
            if time.monotonic() > deadline:
                raise SyncBusy(f"Failed to sync: another server process has held the sync lock of "
                               f"{db.describe()} for more than {timeout_s:.0f} s")
            if not said:
                log.info("sync: another server process is syncing; waiting for it")
                said = True
            time.sleep(POLL_S)
        conn.commit()  # the lock belongs to the session, not to this transaction
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SYNC_LOCK_KEY})
                conn.commit()
            except Exception as e:
                log.warning("sync: could not release the sync lock (%s); closing its connection instead",
                            type(e).__name__)
                conn.invalidate()  # closing the session releases the lock all the same
