"""The console's reads of the registry: filtered device pages, fleet counts, live progress.

    >>> from fota_server.registry import Registry
    >>> q = ConsoleQueries(Registry(":memory:"))
    >>> q.device_page(DeviceFilter(), limit=50).items
    []

Device pages use keyset paging on the device ID (the primary key): ``WHERE device_id > :after
ORDER BY device_id LIMIT n``, so a page costs the same at the first device and the ten-thousandth.
A device's *state* is the status of its newest update (``updating`` while it is offered or in
progress, ``confirmed``, ``reverted``, ``failed``) or ``idle`` when it never had one; it is read
through the ``updates_by_device`` index, one row per device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.sql import Select

from fota_server.db.schema import device_settings, devices, updates
from fota_server.registry import Registry, now_iso

_D = devices.c
_U = updates.c
_S = device_settings.c

STATES = ("updating", "confirmed", "reverted", "failed", "idle")
OPEN = ("offered", "in_progress")
LAST_SEEN_BUCKETS = (("within 5 minutes", 300), ("within an hour", 3600), ("within a day", 86400))
STALE = "more than a day ago"

_NEWEST_STATUS = (select(_U.status).where(_U.device_id == _D.device_id).order_by(_U.id.desc()).limit(1)
                  .correlate(devices).scalar_subquery())
_STATE = case((_NEWEST_STATUS.is_(None), literal("idle")),
              (or_(_NEWEST_STATUS == "offered", _NEWEST_STATUS == "in_progress"), literal("updating")),
              else_=_NEWEST_STATUS)
_GROUP = func.coalesce(_S.group_name, _D.reported_group)
_JOINED = devices.outerjoin(device_settings, _S.device_id == _D.device_id)


@dataclass(frozen=True)
class DeviceFilter:
    """What the device list shows: part of an ID, a group, a running version, a state."""

    q: str = ""
    group: str = ""
    version: str = ""
    state: str = ""

    def where(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.q:
            out.append(_D.device_id.contains(self.q.lower(), autoescape=True))
        if self.group:
            out.append(_GROUP == self.group)  # noqa: SIM300 (a SQL expression, not a constant)
        if self.version:
            out.append(_D.running_version == self.version)
        if self.state:
            out.append(_STATE == self.state)  # noqa: SIM300
        return out

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("q", self.q), ("group", self.group), ("version", self.version),
                                  ("state", self.state)) if v}


@dataclass
class DevicePage:
    items: list[dict[str, Any]]
    total: int
    first: str | None = None   # the first device ID shown (the previous page ends before it)
    last: str | None = None    # the last one (the next page starts after it)
    has_next: bool = False
    has_previous: bool = False


@dataclass
class Overview:
    devices: int
    by_version: list[tuple[str, str, int]]          # running version, slot, devices
    by_state: dict[str, int]
    last_seen: list[tuple[str, int]]                # bucket label, devices
    groups: list[tuple[str, int]] = field(default_factory=list)


def _percent(offset: int, size: int) -> int:
    return min(100, offset * 100 // size) if size > 0 else 0


def step_of(update: dict[str, Any]) -> str:
    """What the update is doing, from its status and the bridge's latest progress report."""
    status = update["status"]
    if status == "offered":
        return "offered, waiting for the bridge"
    if status == "in_progress":
        return "writing the image" if update["offset"] < update["size"] else "verifying and booting"
    return status


def live_item(u: dict[str, Any]) -> dict[str, Any]:
    """The JSON of one update for the live progress bars."""
    return {"id": u["id"], "device_id": u["device_id"], "version": u["version"],
            "target_slot": u["target_slot"], "status": u["status"], "offset": u["offset"], "size": u["size"],
            "percent": 100 if u["status"] == "confirmed" else _percent(u["offset"], u["size"]),
            "step": step_of(u), "reason": u["reason"], "updated_at": u["updated_at"]}


class ConsoleQueries:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _rows(self, stmt: Select[Any]) -> list[Any]:
        with self.registry.db.autocommit() as conn:
            return list(conn.execute(stmt).all())

    def device_page(self, flt: DeviceFilter, limit: int = 50, after: str | None = None,
                    before: str | None = None) -> DevicePage:
        """One page of devices in ID order after ``after`` (or the page before ``before``)."""
        cols = [*devices.c, _GROUP.label("group"), _STATE.label("state")]
        where = flt.where()
        stmt = select(*cols).select_from(_JOINED)
        if before is not None:
            stmt = stmt.where(*where, _D.device_id < before).order_by(_D.device_id.desc())
        else:
            stmt = stmt.where(*where, *([_D.device_id > after] if after is not None else []))
            stmt = stmt.order_by(_D.device_id)
        rows = self._rows(stmt.limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        if before is not None:
            rows.reverse()
        total = int(self._rows(select(func.count()).select_from(_JOINED).where(*where))[0][0])
        items = [dict(r._mapping) for r in rows]
        page = DevicePage(items, total)
        if items:
            page.first, page.last = items[0]["device_id"], items[-1]["device_id"]
            page.has_next = more if before is None else True
            page.has_previous = (after is not None) if before is None else more
        return page

    def device_state(self, device_id: str) -> dict[str, Any] | None:
        rows = self._rows(select(_GROUP.label("group"), _STATE.label("state")).select_from(_JOINED)
                          .where(_D.device_id == device_id))
        return dict(rows[0]._mapping) if rows else None

    def versions(self) -> list[str]:
        rows = self._rows(select(_D.running_version).where(_D.running_version.is_not(None))
                          .group_by(_D.running_version))
        return sorted((r[0] for r in rows), key=_version_key, reverse=True)

    def overview(self, now: float | None = None) -> Overview:
        now = time.time() if now is None else now
        by_version = [(r[0] or "?", r[1] or "?", int(r[2])) for r in self._rows(
            select(_D.running_version, _D.running_slot, func.count()).group_by(_D.running_version,
                                                                               _D.running_slot))]
        by_version.sort(key=lambda t: (_version_key(t[0]), t[1]), reverse=True)
        by_state = dict.fromkeys(STATES, 0)
        for state, n in self._rows(select(_STATE, func.count()).select_from(devices).group_by(_STATE)):
            by_state[state] = int(n)
        cuts = [(label, now_iso(now - seconds)) for label, seconds in LAST_SEEN_BUCKETS]
        sums = [func.sum(case((and_(_D.last_seen >= cut, *([_D.last_seen < cuts[i - 1][1]] if i else [])),
                              1), else_=0)) for i, (_, cut) in enumerate(cuts)]
        sums.append(func.sum(case((_D.last_seen < cuts[-1][1], 1), else_=0)))
        row = self._rows(select(func.count(), *sums).select_from(devices))[0]
        labels = [label for label, _ in cuts] + [STALE]
        return Overview(int(row[0]), by_version, by_state,
                        [(label, int(n or 0)) for label, n in zip(labels, row[1:], strict=True)])

    def live(self, device_id: str | None = None, ids: list[int] | None = None,
             limit: int = 20) -> list[dict[str, Any]]:
        """Open updates (of one device, or of all, newest first), and the updates ``ids`` whatever
        their status (a bar that was moving shows how it ended)."""
        cond = [or_(*(_U.status == s for s in OPEN))]
        if device_id is not None:
            cond.append(_U.device_id == device_id)
        rows = self._rows(select(updates).where(*cond).order_by(_U.id.desc()).limit(limit))
        seen = {r.id for r in rows}
        wanted = [i for i in (ids or [])[:limit] if i not in seen]
        if wanted:
            rows += self._rows(select(updates).where(_U.id.in_(wanted)).order_by(_U.id.desc()))
        rows.sort(key=lambda r: r.id, reverse=True)
        return [live_item(dict(r._mapping)) for r in rows]

    def rollout_timeline(self, rollout_id: int, limit: int = 5000) -> list[tuple[str, str]]:
        """(finished_at, outcome) of the rollout's finished updates, oldest first."""
        rows = self._rows(select(_U.finished_at, _U.status).where(_U.rollout_id == rollout_id,
                                                                  _U.finished_at.is_not(None))
                          .order_by(_U.finished_at).limit(limit))
        return [(r[0], r[1]) for r in rows]


def _version_key(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("+")[0].split("."))
    except ValueError:
        return (-1,)
