"""Device registry and update history: SQLite (the embedded default) or PostgreSQL.

    >>> reg = Registry(":memory:")
    >>> reg.count_devices()
    0
    >>> reg.backend
    'sqlite'

``Registry(target)`` takes what ``fota_server.db.engine.open_database`` takes: a SQLite file path,
``":memory:"``, or a URL (``postgresql://user@host/db``). It brings the schema to the newest
migration first (``fota_server.db.migrate``), so a registry from an older server is upgraded in
place. Every method is one short transaction (a few statements), so the async request handlers call
them directly; with PostgreSQL, several server processes share one registry, and the row locks
taken here keep their writes consistent.

An update row is created when a check-in is answered with an update, and reused while it stays
open (``offered`` or ``in_progress``) for the same device, version and image, so a bridge that
checks in again before it reports gets the same ``update_id``. Its status then follows the
reports: ``in_progress`` (progress) and one of ``confirmed`` / ``reverted`` / ``failed`` (result).
The stored offset only moves forwards: a late report never lowers it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Insert, Row, bindparam, case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fota_server.db.engine import Database, DatabaseUnavailable, open_database
from fota_server.db.locks import sync_lock
from fota_server.db.migrate import upgrade
from fota_server.db.prepared import Prepared
from fota_server.db.schema import device_hits, devices, fleet_epoch, retries, sync_state, updates
from fota_server.fleet_store import EPOCH, account, enrol

OPEN_STATES = ("offered", "in_progress")
OUTCOMES = ("confirmed", "reverted", "failed")
SYNC_LOCK_TIMEOUT_S = 300.0
SUPERSEDED = "superseded by a newer offer"

_U = updates.c
_D = devices.c
log = logging.getLogger("fota_server")
_IS_OPEN = or_(*(_U.status == s for s in OPEN_STATES))  # not IN (...): that is expanded per execution


@dataclass(frozen=True)
class Enrolment:
    """The rollout an offer belongs to: its id, the device's stage (None: stages of fixed counts,
    admitted into ``current_stage`` while fewer than ``cap`` devices are)."""

    rollout_id: int
    stage: int | None
    current_stage: int
    cap: int | None


class RegistryError(Exception):
    """A report that does not fit the registry; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Health:
    """What a bridge reads from its STM32's INFO and reports at check-in (None: not reported)."""

    temp_centi: int | None = None         # die temperature, 0.01 degC
    uptime_ms: int | None = None          # since the application started
    security_counter: int | None = None   # the journal's anti-rollback floor
    key_id: str | None = None             # the running image's signing key, 8 hex digits


HEALTH = tuple(f.name for f in fields(Health))


def now_iso(t: float | None = None) -> str:
    if t is None:
        t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _device(row: Row[Any]) -> dict[str, Any]:
    d = row._mapping
    return {
        "device_id": d["device_id"], "first_seen": d["first_seen"], "last_seen": d["last_seen"],
        "checkins": d["checkins"], "running_slot": d["running_slot"], "running_version": d["running_version"],
        "slots": {"A": {"state": d["slot_a_state"], "version": d["slot_a_version"]},
                  "B": {"state": d["slot_b_state"], "version": d["slot_b_version"]}},
        "reported_group": d["reported_group"], "temp_centi": d["temp_centi"], "uptime_ms": d["uptime_ms"],
        "security_counter": d["security_counter"], "key_id": d["key_id"],
    }


def _update(row: Row[Any]) -> dict[str, Any]:
    u = dict(row._mapping)
    u["downgrade"] = bool(u["downgrade"])
    return u


def _upsert_checkin(dialect_insert: Any) -> Insert:
    """The device row of a check-in, RETURNING the fleet's epoch (fota_server.fleet: whether this
    process's copy of the rollouts is still current) in the same round trip."""
    stmt = dialect_insert(devices)
    epoch = select(fleet_epoch.c.value).where(fleet_epoch.c.name == EPOCH).scalar_subquery()
    return stmt.on_conflict_do_update(index_elements=[_D.device_id], set_={
        "last_seen": stmt.excluded.last_seen, "checkins": _D.checkins + 1,
        **{c: stmt.excluded[c] for c in ("running_slot", "running_version", "slot_a_state", "slot_a_version",
                                         "slot_b_state", "slot_b_version", "reported_group", *HEALTH)},
    }).returning(epoch)


def _upsert_hit(dialect_insert: Any) -> Insert:
    """Count one request of a device in the window starting at ``p_window``; RETURNING the count.

    A newer window starts the count again; within the window the count stops at ``p_limit`` + 1, so
    a refused request (count > limit) costs nothing more. A process whose clock is behind counts
    into the newer window already stored."""
    h = device_hits.c
    stmt = dialect_insert(device_hits).values(device_id=bindparam("p_device"),
                                              window_start=bindparam("p_window"), hits=1)
    same = h.window_start >= stmt.excluded.window_start
    return stmt.on_conflict_do_update(index_elements=[h.device_id], set_={
        "hits": case((same, case((h.hits > bindparam("p_limit"), h.hits), else_=h.hits + 1)), else_=1),
        "window_start": case((same, h.window_start), else_=stmt.excluded.window_start),
    }).returning(h.hits, h.window_start)


# Statements built once (SQLAlchemy caches their compiled form); parameters are bound by name.
_SELECT_UPDATE = select(updates).where(_U.id == bindparam("p_id"))
_SELECT_UPDATE_LOCKED = _SELECT_UPDATE.with_for_update()  # PostgreSQL: FOR UPDATE; SQLite: BEGIN IMMEDIATE
_LOCK_DEVICE = select(_D.device_id).where(_D.device_id == bindparam("p_device")).with_for_update()
# A reverted update counts unless an operator allowed a retry after it (fota_server.fleet.allow_retry).
_RETRY_AFTER = select(func.coalesce(func.max(retries.c.after_update_id), 0)).where(
    retries.c.device_id == bindparam("p_device"), retries.c.version == bindparam("p_version"),
).scalar_subquery()
_WAS_REVERTED = select(literal(1)).where(
    _U.device_id == bindparam("p_device"), _U.version == bindparam("p_version"),
    _U.sha256 == bindparam("p_sha256"), _U.status == "reverted", _U.id > _RETRY_AFTER).limit(1)
_OPEN_UPDATE = select(_U.id, _U.rollout_id).where(
    _U.device_id == bindparam("p_device"), _U.version == bindparam("p_version"),
    _U.target_slot == bindparam("p_target"), _U.sha256 == bindparam("p_sha256"),
    _IS_OPEN).order_by(_U.id.desc()).limit(1)
_SUPERSEDE = update(updates).where(_U.device_id == bindparam("p_device"), _IS_OPEN).values(
    status="failed", outcome="failed", reason=SUPERSEDED, finished_at=bindparam("p_ts"),
    updated_at=bindparam("p_ts"))
_PROGRESS = update(updates).where(_U.id == bindparam("p_id")).values(
    status="in_progress", offset=bindparam("p_offset"), updated_at=bindparam("p_ts"))
_RESULT = update(updates).where(_U.id == bindparam("p_id")).values(
    status=bindparam("p_outcome"), outcome=bindparam("p_outcome"), reason=bindparam("p_reason"),
    duration_ms=bindparam("p_duration"), offset=bindparam("p_offset"), updated_at=bindparam("p_ts"),
    finished_at=bindparam("p_ts"), result_slot=bindparam("p_slot"), result_version=bindparam("p_version"))
_RUNNING = update(devices).where(_D.device_id == bindparam("p_device")).values(
    running_slot=bindparam("p_slot"), running_version=bindparam("p_version"), last_seen=bindparam("p_ts"))
_INSERT_UPDATE = updates.insert()
_COUNT_DEVICES = select(func.count()).select_from(devices)
_DEVICES = select(devices).order_by(_D.device_id).limit(bindparam("p_limit")).offset(bindparam("p_offset"))
_DEVICE = select(devices).where(_D.device_id == bindparam("p_device"))
_UPDATES = select(updates).order_by(_U.id.desc()).limit(bindparam("p_limit")).offset(bindparam("p_offset"))
_UPDATES_OF = select(updates).where(_U.device_id == bindparam("p_device")).order_by(_U.id.desc()).limit(
    bindparam("p_limit")).offset(bindparam("p_offset"))
_COUNT_UPDATES = select(func.count()).select_from(updates)
_COUNT_UPDATES_OF = _COUNT_UPDATES.where(_U.device_id == bindparam("p_device"))
_LAST_SYNC = select(sync_state).where(sync_state.c.name == "last")


class Registry:
    def __init__(self, target: Path | str) -> None:
        self.db: Database = open_database(target)
        upgrade(self.db)
        dialect_insert = postgresql.insert if self.db.backend == "postgresql" else sqlite.insert
        dialect = self.db.engine.dialect
        # the check-in path: compiled once, run on the driver's connection (fota_server.db.prepared)
        self._checkin = Prepared(_upsert_checkin(dialect_insert), dialect)
        self._was_reverted = Prepared(_WAS_REVERTED, dialect)
        self._open_update = Prepared(_OPEN_UPDATE, dialect)
        self._hit = Prepared(_upsert_hit(dialect_insert), dialect)
        sync = dialect_insert(sync_state)
        self._sync = sync.on_conflict_do_update(index_elements=[sync_state.c.name], set_={
            c.name: sync.excluded[c.name] for c in sync_state.c if c.name != "name"})
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._row_locks = self.db.backend == "postgresql"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.db.backend

    def describe(self) -> str:
        """The database for logs (no password)."""
        return self.db.describe()

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._unavailable(), self.db.write() as conn:
            yield conn

    @contextlib.contextmanager
    def _auto(self) -> Iterator[Connection]:
        with self._unavailable(), self.db.autocommit() as conn:
            yield conn

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A database that went away answers 503 (the detail goes to the log, not to the client)."""
        try:
            yield
        except DatabaseUnavailable as e:
            log.error("%s", e)
            raise RegistryError(503, "the registry database is unavailable; try again later") from None

    # -- check-in ---------------------------------------------------------------------------------
    def record_checkin(self, device_id: str, running_slot: str, running_version: str,
                       slots: dict[str, dict[str, Any]], group: str | None = None,
                       health: Health | None = None) -> int:
        """Record the check-in (with what the bridge read from its STM32's INFO, when it sends it:
        ``health``; a field it does not send is stored as unknown); the fleet's epoch
        (fota_server.fleet)."""
        h = health or Health()
        ts = now_iso()
        a, b = slots["A"], slots["B"]
        with self._auto() as conn:  # one statement: atomic on its own
            row = self._checkin.execute(conn, {
                "device_id": device_id, "first_seen": ts, "last_seen": ts, "checkins": 1,
                "running_slot": running_slot, "running_version": running_version,
                "slot_a_state": a["state"], "slot_a_version": a.get("version"),
                "slot_b_state": b["state"], "slot_b_version": b.get("version"),
                "reported_group": group, "temp_centi": h.temp_centi, "uptime_ms": h.uptime_ms,
                "security_counter": h.security_counter, "key_id": h.key_id}).fetchone()
        return int(row[0] or 0)

    def count_hit(self, device_id: str, window_start: int, limit: int) -> tuple[int, int]:
        """Count one request of ``device_id`` (fota_server.ratelimit): its count in the current window
        (``limit`` + 1 once over the limit) and that window's start (Unix seconds)."""
        with self._auto() as conn:  # one statement: atomic on its own
            row = self._hit.execute(conn, {"p_device": device_id, "p_window": window_start,
                                           "p_limit": limit}).fetchone()
        return int(row[0]), int(row[1])

    def was_reverted(self, device_id: str, version: str, sha256: str) -> bool:
        with self._auto() as conn:
            row = self._was_reverted.execute(conn, {"p_device": device_id, "p_version": version,
                                                    "p_sha256": sha256}).fetchone()
        return row is not None

    def open_update(self, device_id: str, version: str, target_slot: str, file: str, size: int, sha256: str,
                    downgrade: bool, from_slot: str, from_version: str,
                    rollout: Enrolment | None = None) -> tuple[int, bool]:
        """The id of the open update for this device and image (created if there is none), and
        whether it was created now. A new offer of a rollout enrols the device in it
        (:func:`fota_server.fleet_store.enrol`; :class:`~fota_server.fleet_store.StageFull` when a
        stage of fixed counts has no room left: nothing is written)."""
        key = {"p_device": device_id, "p_version": version, "p_target": target_slot, "p_sha256": sha256}
        wanted = rollout.rollout_id if rollout is not None else None
        with self._auto() as conn:  # the usual case, a bridge checking in again: one query
            row = self._open_update.execute(conn, key).fetchone()
        # an open offer made outside the rollout that now holds the device is superseded by the rollout's
        if row is not None and (rollout is None or row[1] == wanted):
            return int(row[0]), False
        with self._write() as conn:
            if self._row_locks:  # one offer at a time per device (SQLite: BEGIN IMMEDIATE did it)
                conn.execute(_LOCK_DEVICE, {"p_device": device_id})
            found = conn.execute(_OPEN_UPDATE, key).first()  # again: another process may have made it
            if found is not None and (rollout is None or found.rollout_id == wanted):
                return int(found.id), False
            ts = now_iso()
            # Any other open update of this device is superseded by this one.
            conn.execute(_SUPERSEDE, {"p_device": device_id, "p_ts": ts})
            res = conn.execute(_INSERT_UPDATE, {
                "device_id": device_id, "version": version, "target_slot": target_slot, "file": file,
                "size": size, "sha256": sha256, "downgrade": downgrade, "from_slot": from_slot,
                "from_version": from_version, "status": "offered", "offset": 0, "created_at": ts,
                "updated_at": ts, "rollout_id": rollout.rollout_id if rollout else None})
            uid = int(res.inserted_primary_key[0])
            if rollout is not None:
                enrol(conn, rollout.rollout_id, device_id, rollout.stage, rollout.current_stage, rollout.cap,
                      uid, ts)
            return uid, True

    # -- reports ----------------------------------------------------------------------------------
    def report(self, device_id: str, update_id: int, stage: str, offset: int, outcome: str | None,
               reason: str | None, duration_ms: int | None, running_slot: str | None,
               running_version: str | None, now: float | None = None) -> dict[str, Any]:
        """Record a report; a result of a rollout's offer counts into the rollout (which may pause
        itself: :func:`fota_server.fleet_store.account`). ``now``: the fleet's clock."""
        if reason is not None and "\x00" in reason:  # PostgreSQL text cannot hold it; refused on both
            raise RegistryError(422, "invalid request: reason: NUL characters are not allowed")
        ts = now_iso()
        with self._write() as conn:
            row = conn.execute(_SELECT_UPDATE_LOCKED, {"p_id": update_id}).first()
            if row is None or row.device_id != device_id:
                raise RegistryError(404, f"update {update_id} of device {device_id} not found")
            upd = _update(row)
            if stage == "progress":
                if upd["status"] not in OPEN_STATES:
                    raise RegistryError(409, f"update {update_id} is already finished ({upd['status']})")
                if offset > upd["size"]:
                    raise RegistryError(422, f"offset {offset} is beyond the image size {upd['size']}")
                conn.execute(_PROGRESS, {"p_id": update_id, "p_offset": max(offset, upd["offset"]),
                                         "p_ts": ts})
            else:
                if outcome is None:
                    raise RegistryError(422, "a result report needs an outcome: confirmed, reverted or "
                                             "failed")
                if upd["status"] not in OPEN_STATES:
                    if upd["outcome"] == outcome:  # a repeated report (the bridge retried): fine
                        return upd
                    raise RegistryError(409, f"update {update_id} already finished as {upd['status']}")
                conn.execute(_RESULT, {
                    "p_id": update_id, "p_outcome": outcome, "p_reason": reason, "p_duration": duration_ms,
                    "p_offset": max(offset, upd["offset"]), "p_ts": ts, "p_slot": running_slot,
                    "p_version": running_version})
                if upd["rollout_id"] is not None:
                    now = time.time() if now is None else now
                    paused = account(conn, upd["rollout_id"], device_id, update_id, outcome, now_iso(now),
                                     now)
                    if paused:
                        log.warning("rollout %d of %s paused itself: %s", upd["rollout_id"], upd["version"],
                                    paused)
            if running_slot is not None and running_version is not None:
                conn.execute(_RUNNING, {"p_device": device_id, "p_slot": running_slot,
                                        "p_version": running_version, "p_ts": ts})
            row = conn.execute(_SELECT_UPDATE, {"p_id": update_id}).one()
        return _update(row)

    # -- queries ----------------------------------------------------------------------------------
    def count_devices(self) -> int:
        with self._auto() as conn:
            return int(conn.execute(_COUNT_DEVICES).scalar_one())

    def list_devices(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """One page of devices in device ID order."""
        with self._auto() as conn:
            rows = conn.execute(_DEVICES, {"p_limit": limit, "p_offset": offset}).all()
        return [_device(r) for r in rows]

    def devices(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self.list_devices(0, limit)

    def device(self, device_id: str) -> dict[str, Any] | None:
        with self._auto() as conn:
            row = conn.execute(_DEVICE, {"p_device": device_id}).first()
        return _device(row) if row else None

    def updates(self, device_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Update history, newest first (of one device, or of all)."""
        return self.list_updates(device_id, 0, limit)

    def list_updates(self, device_id: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
        """Updates newest first (of one device, or of all), ``limit`` of them from ``offset``."""
        with self._auto() as conn:
            if device_id is None:
                rows = conn.execute(_UPDATES, {"p_limit": limit, "p_offset": offset}).all()
            else:
                rows = conn.execute(_UPDATES_OF, {"p_device": device_id, "p_limit": limit,
                                                  "p_offset": offset}).all()
        return [_update(r) for r in rows]

    def count_updates(self, device_id: str | None = None) -> int:
        with self._auto() as conn:
            if device_id is None:
                return int(conn.execute(_COUNT_UPDATES).scalar_one())
            return int(conn.execute(_COUNT_UPDATES_OF, {"p_device": device_id}).scalar_one())

    # -- sync state shared by the server processes -----------------------------------------------
    def record_sync(self, result: dict[str, Any]) -> None:
        """Store the outcome of a sync (``SyncResult.as_dict()``) as the last one."""
        with self._auto() as conn:
            conn.execute(self._sync, {
                "name": "last", "status": result["status"], "message": result["message"],
                "local_version": result.get("local_version"), "remote_version": result.get("remote_version"),
                "at": result["at"], "duration_ms": int(result.get("duration_ms") or 0),
                "instance": self._instance})

    def last_sync(self) -> dict[str, Any] | None:
        """The last sync's outcome, whichever server process ran it (None: never synced)."""
        with self._auto() as conn:
            row = conn.execute(_LAST_SYNC).first()
        if row is None:
            return None
        d = dict(row._mapping)
        d.pop("name")
        return d

    @contextlib.contextmanager
    def sync_lock(self, folder: Path, timeout_s: float = SYNC_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Held while syncing ``folder``: one sync at a time across processes and hosts."""
        with sync_lock(self.db, folder, timeout_s):
            yield
