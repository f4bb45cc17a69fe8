"""Device registry and update history in SQLite.

    >>> reg = Registry(":memory:")
    >>> reg.count_devices()
    0

One connection guarded by a lock: every statement is short (a few tens of microseconds in WAL
mode), so the async request handlers call it directly instead of hopping to a thread.

An update row is created when a check-in is answered with an update, and reused while it stays
open (``offered`` or ``in_progress``) for the same device, version and image, so a bridge that
checks in again before it reports gets the same ``update_id``. Its status then follows the
reports: ``in_progress`` (progress) and one of ``confirmed`` / ``reverted`` / ``failed`` (result).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

OPEN_STATES = ("offered", "in_progress")
OUTCOMES = ("confirmed", "reverted", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id       TEXT PRIMARY KEY,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    checkins        INTEGER NOT NULL DEFAULT 0,
    running_slot    TEXT,
    running_version TEXT,
    slot_a_state    TEXT,
    slot_a_version  TEXT,
    slot_b_state    TEXT,
    slot_b_version  TEXT
);
CREATE TABLE IF NOT EXISTS updates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     TEXT NOT NULL REFERENCES devices(device_id),
    version       TEXT NOT NULL,
    target_slot   TEXT NOT NULL,
    file          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    downgrade     INTEGER NOT NULL,
    from_slot     TEXT NOT NULL,
    from_version  TEXT NOT NULL,
    status        TEXT NOT NULL,
    "offset"      INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT,
    reason        TEXT,
    duration_ms   INTEGER,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT,
    result_slot   TEXT,
    result_version TEXT
);
CREATE INDEX IF NOT EXISTS updates_by_device ON updates(device_id, id);
"""

_DEVICE_COLS = ("device_id", "first_seen", "last_seen", "checkins", "running_slot", "running_version",
                "slot_a_state", "slot_a_version", "slot_b_state", "slot_b_version")
_UPDATE_COLS = ("id", "device_id", "version", "target_slot", "file", "size", "sha256", "downgrade",
                "from_slot", "from_version", "status", "offset", "outcome", "reason", "duration_ms",
                "created_at", "updated_at", "finished_at", "result_slot", "result_version")
_UPDATE_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in _UPDATE_COLS) + " FROM updates"


class RegistryError(Exception):
    """A report that does not fit the registry; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _device(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(_DEVICE_COLS, row, strict=True))
    return {
        "device_id": d["device_id"], "first_seen": d["first_seen"], "last_seen": d["last_seen"],
        "checkins": d["checkins"], "running_slot": d["running_slot"], "running_version": d["running_version"],
        "slots": {"A": {"state": d["slot_a_state"], "version": d["slot_a_version"]},
                  "B": {"state": d["slot_b_state"], "version": d["slot_b_version"]}},
    }


def _update(row: tuple[Any, ...]) -> dict[str, Any]:
    u = dict(zip(_UPDATE_COLS, row, strict=True))
    u["downgrade"] = bool(u["downgrade"])
    return u


class Registry:
    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- check-in ---------------------------------------------------------------------------------
    def record_checkin(self, device_id: str, running_slot: str, running_version: str,
                       slots: dict[str, dict[str, Any]]) -> None:
        ts = now_iso()
        a, b = slots["A"], slots["B"]
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (device_id, first_seen, last_seen, checkins, running_slot,"
                " running_version, slot_a_state, slot_a_version, slot_b_state, slot_b_version)"
                " VALUES (?,?,?,1,?,?,?,?,?,?)"
                " ON CONFLICT(device_id) DO UPDATE SET last_seen=excluded.last_seen, checkins=checkins+1,"
                " running_slot=excluded.running_slot, running_version=excluded.running_version,"
                " slot_a_state=excluded.slot_a_state, slot_a_version=excluded.slot_a_version,"
                " slot_b_state=excluded.slot_b_state, slot_b_version=excluded.slot_b_version",
                (device_id, ts, ts, running_slot, running_version, a["state"], a.get("version"),
                 b["state"], b.get("version")))

    def was_reverted(self, device_id: str, version: str, sha256: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM updates WHERE device_id=? AND version=? AND sha256=?"
                " AND status='reverted' LIMIT 1",
                (device_id, version, sha256)).fetchone()
        return row is not None

    def open_update(self, device_id: str, version: str, target_slot: str, file: str, size: int, sha256: str,
                    downgrade: bool, from_slot: str, from_version: str) -> tuple[int, bool]:
        """The id of the open update for this device and image (created if there is none), and
        whether it was created now."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM updates WHERE device_id=? AND version=? AND target_slot=? AND sha256=?"
                " AND status IN ('offered','in_progress') ORDER BY id DESC LIMIT 1",
                (device_id, version, target_slot, sha256)).fetchone()
            if row is not None:
                return int(row[0]), False
            ts = now_iso()
            # Any other open update of this device is superseded by this one.
            self._db.execute(
                "UPDATE updates SET status='failed', outcome='failed', reason='superseded by a newer offer',"
                " finished_at=?, updated_at=? WHERE device_id=? AND status IN ('offered','in_progress')",
                (ts, ts, device_id))
            cur = self._db.execute(
                "INSERT INTO updates (device_id, version, target_slot, file, size, sha256, downgrade,"
                " from_slot, from_version, status, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,'offered',?,?)",
                (device_id, version, target_slot, file, size, sha256, int(downgrade), from_slot, from_version,
                 ts, ts))
            return int(cur.lastrowid or 0), True

    # -- reports ----------------------------------------------------------------------------------
    def report(self, device_id: str, update_id: int, stage: str, offset: int, outcome: str | None,
               reason: str | None, duration_ms: int | None, running_slot: str | None,
               running_version: str | None) -> dict[str, Any]:
        ts = now_iso()
        with self._lock:
            row = self._db.execute(_UPDATE_SELECT + " WHERE id=?", (update_id,)).fetchone()
            if row is None or row[1] != device_id:
                raise RegistryError(404, f"update {update_id} of device {device_id} not found")
            upd = _update(row)
            if stage == "progress":
                if upd["status"] not in OPEN_STATES:
                    raise RegistryError(409, f"update {update_id} is already finished ({upd['status']})")
                if offset > upd["size"]:
                    raise RegistryError(422, f"offset {offset} is beyond the image size {upd['size']}")
                # MAX: a late report with a smaller offset does not move the progress back.
                self._db.execute("UPDATE updates SET status='in_progress', \"offset\"=MAX(\"offset\", ?),"
                                 " updated_at=? WHERE id=?", (offset, ts, update_id))
            else:
                if outcome is None:
                    raise RegistryError(422, "a result report needs an outcome: confirmed, reverted or "
                                             "failed")
                if upd["status"] not in OPEN_STATES:
                    if upd["outcome"] == outcome:  # a repeated report (the bridge retried): fine
                        return upd
                    raise RegistryError(409, f"update {update_id} already finished as {upd['status']}")
                self._db.execute(
                    'UPDATE updates SET status=?, outcome=?, reason=?, duration_ms=?, "offset"=?,'
                    " updated_at=?, finished_at=?, result_slot=?, result_version=? WHERE id=?",
                    (outcome, outcome, reason, duration_ms, max(offset, upd["offset"]), ts, ts,
                     running_slot, running_version, update_id))
            if running_slot is not None and running_version is not None:
                self._db.execute("UPDATE devices SET running_slot=?, running_version=?, last_seen=?"
                                 " WHERE device_id=?", (running_slot, running_version, ts, device_id))
            row = self._db.execute(_UPDATE_SELECT + " WHERE id=?", (update_id,)).fetchone()
        return _update(row)

    # -- queries ----------------------------------------------------------------------------------
    def count_devices(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM devices").fetchone()[0])

    def devices(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT " + ", ".join(_DEVICE_COLS)
                                    + " FROM devices ORDER BY device_id LIMIT ?", (limit,)).fetchall()
        return [_device(r) for r in rows]

    def device(self, device_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT " + ", ".join(_DEVICE_COLS) + " FROM devices WHERE device_id=?",
                                   (device_id,)).fetchone()
        return _device(row) if row else None

    def updates(self, device_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            if device_id is None:
                rows = self._db.execute(_UPDATE_SELECT + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute(_UPDATE_SELECT + " WHERE device_id=? ORDER BY id DESC LIMIT ?",
                                        (device_id, limit)).fetchall()
        return [_update(r) for r in rows]

    # -- pages (offset / limit, with the totals the list routes report) ----------------------------
    def list_devices(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Devices ordered by ID, ``limit`` of them from ``offset``."""
        with self._lock:
            rows = self._db.execute("SELECT " + ", ".join(_DEVICE_COLS)
                                    + " FROM devices ORDER BY device_id LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
        return [_device(r) for r in rows]

    def count_updates(self, device_id: str | None = None) -> int:
        with self._lock:
            if device_id is None:
                return int(self._db.execute("SELECT COUNT(*) FROM updates").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM updates WHERE device_id=?",
                                        (device_id,)).fetchone()[0])

    def list_updates(self, device_id: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
        """Updates newest first (of one device, or of all), ``limit`` of them from ``offset``."""
        with self._lock:
            if device_id is None:
                rows = self._db.execute(_UPDATE_SELECT + " ORDER BY id DESC LIMIT ? OFFSET ?",
                                        (limit, offset)).fetchall()
            else:
                rows = self._db.execute(_UPDATE_SELECT + " WHERE device_id=? ORDER BY id DESC"
                                        " LIMIT ? OFFSET ?", (device_id, limit, offset)).fetchall()
        return [_update(r) for r in rows]
