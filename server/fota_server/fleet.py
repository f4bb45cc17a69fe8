"""The fleet: rollouts, device groups, pins, maintenance windows and retries, for the operator API
and the check-in.

    >>> from fota_server.registry import Registry
    >>> fleet = Fleet(Registry(":memory:"), clock=lambda: 0.0)
    >>> fleet.create_rollout({"version": "1.2.0", "target": {"all": True},
    ...                       "stages": [{"percent": 10}, {"percent": 100}]}, "ana")["state"]
    'active'
    >>> fleet.config(fleet.epoch()).gated
    frozenset({'1.2.0'})

**Check-in path.** The configuration (every rollout's state, the operators' groups and pins, the
windows) is kept per process as one :class:`FleetConfig` and reloaded only when the epoch changes:
a counter row raised by every change, which the check-in's device upsert returns with its own row
(no extra round trip). :meth:`FleetConfig.plan` then says which rollout and which release concern
the device, and :func:`fota_server.decision.decide` decides; the registry is touched again only for
an offer (the enrolment in the rollout) and for a release the device reverted before.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fota_formats.semver import Version
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fota_server.db.schema import (
    device_settings,
    devices,
    fleet_epoch,
    group_settings,
    retries,
    rollout_devices,
    rollout_stages,
    rollout_transitions,
    rollouts,
    updates,
)
from fota_server.fleet_store import EPOCH, SERVER_ACTOR, advance, bump_epoch, needed, transition
from fota_server.registry import Registry, RegistryError, now_iso
from fota_server.rollout import TERMINAL, Rollout, Stage, Target, Window, cutoffs, hhmm, shares

_R = rollouts.c
_S = rollout_stages.c
_EPOCH = select(fleet_epoch.c.value).where(fleet_epoch.c.name == EPOCH)
DEFAULTS = {"success_threshold": 0.9, "soak_s": 0, "failure_threshold": 0.2, "min_sample": 5,
            "max_consecutive_failures": 3}
ACTIONS = {  # action: (states it applies to, the state after)
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "abort": (("active", "paused"), "aborted"),
    "advance": (("active", "paused"), None),
}


@dataclass(frozen=True)
class Plan:
    """What concerns one device at its check-in (from :meth:`FleetConfig.plan`)."""

    group: str | None
    pin: str | None
    window: Window | None
    rollout: Rollout | None
    gated: bool
    version: str | None  # the release to decide with (None: the server's current release)


@dataclass(frozen=True)
class FleetConfig:
    epoch: int = 0
    rollouts: tuple[Rollout, ...] = ()  # newest first, aborted ones left out
    gated: frozenset[str] = frozenset()  # versions that have a rollout (in any state)
    device_groups: dict[str, str] = field(default_factory=dict)
    device_pins: dict[str, str] = field(default_factory=dict)
    group_pins: dict[str, str] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    next_due: float | None = None  # the earliest time a stage opens by itself

    @property
    def empty(self) -> bool:
        return not (self.rollouts or self.gated or self.device_groups or self.device_pins or self.group_pins
                    or self.windows)

    def plan(self, device_id: str, reported_group: str | None, current: str | None) -> Plan:
        """Which rollout holds the device and which release to decide with. Rules: docs/fleet.md."""
        group = self.device_groups.get(device_id, reported_group)
        pin = self.device_pins.get(device_id)
        if pin is None and group is not None:
            pin = self.group_pins.get(group)
        window = self.windows.get(group) if group is not None else None
        if pin is not None:
            return Plan(group, pin, window, None, False, pin)
        held = next((r for r in self.rollouts if r.target.holds(device_id, group)), None)
        free = current is not None and current not in self.gated
        if held is None or (free and Version.parse(current or "") > Version.parse(held.version)):
            return Plan(group, None, window, None, current is not None and not free, current)
        return Plan(group, None, window, held, False, held.version)


def _rollout(row: Any) -> Rollout:
    stages = tuple(Stage(**s) for s in json.loads(row.stages))
    target = Target(row.target_kind, row.target_group, frozenset(json.loads(row.target_devices or "[]")))
    return Rollout(int(row.id), row.version, target, stages, row.state, int(row.current_stage),
                   row.advance_due_at, tuple(json.loads(row.cutoffs)))


class Fleet:
    def __init__(self, registry: Registry, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.clock = clock
        self._config = FleetConfig(epoch=-1)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.registry._write() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.registry._auto() as conn:
            yield conn

    def _ts(self) -> str:
        return now_iso(self.clock())

    # -- the check-in's view ----------------------------------------------------------------------
    def epoch(self) -> int:
        with self._read() as conn:
            return int(conn.execute(_EPOCH).scalar() or 0)

    def config(self, epoch: int) -> FleetConfig:
        """The configuration at ``epoch`` (the value the check-in returned): the cached one, or
        loaded afresh when another change came since."""
        if epoch != self._config.epoch:
            self._config = self._load()
        return self._config

    def invalidate(self) -> None:
        self._config = FleetConfig(epoch=-1)

    def _load(self) -> FleetConfig:
        with self._read() as conn:
            epoch = int(conn.execute(_EPOCH).scalar() or 0)
            rows = conn.execute(select(rollouts).order_by(_R.id.desc())).all()
            dev = conn.execute(select(device_settings)).all()
            grp = conn.execute(select(group_settings)).all()
        live = tuple(_rollout(r) for r in rows if r.state != "aborted")
        dues = [r.advance_due_at for r in live if r.state == "active" and r.advance_due_at is not None]
        windows = {g.group_name: Window(g.window_start, g.window_end) for g in grp
                   if g.window_start is not None and g.window_end is not None}
        return FleetConfig(
            epoch=epoch, rollouts=live, gated=frozenset(r.version for r in rows),
            device_groups={d.device_id: d.group_name for d in dev if d.group_name is not None},
            device_pins={d.device_id: d.pin_version for d in dev if d.pin_version is not None},
            group_pins={g.group_name: g.pin_version for g in grp if g.pin_version is not None},
            windows=windows, next_due=min(dues) if dues else None)

    def tick(self) -> list[int]:
        """Open the stages that are due (enough confirmed devices, soak time over); their rollouts."""
        now = self.clock()
        cfg = self.config(self.epoch())
        if cfg.next_due is None or now < cfg.next_due:
            return []
        opened = []
        for r in cfg.rollouts:
            if r.state == "active" and r.advance_due_at is not None and now >= r.advance_due_at:
                with self._write() as conn:
                    row = conn.execute(select(rollouts).where(_R.id == r.id).with_for_update()).one()
                    if row.state != "active" or row.advance_due_at is None or now < row.advance_due_at:
                        continue  # another process did it
                    last = row.current_stage + 1 >= len(json.loads(row.stages))
                    advance(conn, row, self._ts(), now, SERVER_ACTOR,
                            "every stage succeeded" if last else
                            f"stage {row.current_stage + 1} succeeded and soaked {row.soak_s} s",
                            "complete" if last else "advance")
                opened.append(r.id)
        self.invalidate()
        return opened

    # -- rollouts ---------------------------------------------------------------------------------
    def create_rollout(self, spec: dict[str, Any], actor: str) -> dict[str, Any]:
        """``spec``: a validated :class:`fota_server.fleet_models.RolloutCreate` as a dict."""
        stages = [{k: v for k, v in s.items() if v is not None} for s in spec["stages"]]
        target = spec["target"]
        kind = "all" if target.get("all") else "group" if target.get("group") else "devices"
        now = self.clock()
        ts = self._ts()
        values = {k: spec.get(k) if spec.get(k) is not None else d for k, d in DEFAULTS.items()}
        with self._write() as conn:
            rid = int(conn.execute(rollouts.insert().values(
                name=spec.get("name") or f"{spec['version']} to {kind}", version=spec["version"],
                target_kind=kind, target_group=target.get("group"),
                target_devices=json.dumps(sorted(target["devices"])) if kind == "devices" else None,
                stages=json.dumps(stages), cutoffs="[]", state="active", current_stage=0, stage_opened_at=now,
                advance_due_at=None, admitted=0, consecutive_failures=0, created_at=ts, created_by=actor,
                updated_at=ts, **values)).inserted_primary_key[0])
            expected: list[int | None] = [s.get("count") for s in stages]
            if "percent" in stages[0]:
                known = self._population(conn, kind, target)
                cuts = cutoffs(rid, tuple(Stage(**s) for s in stages), known)
                conn.execute(update(rollouts).where(_R.id == rid).values(cutoffs=json.dumps(cuts)))
                expected = shares([s["percent"] for s in stages], len(known))
            conn.execute(rollout_stages.insert(), [
                {"rollout_id": rid, "stage": k, "expected": expected[k], "devices": 0, "confirmed": 0,
                 "failed": 0, "opened_at": now if k == 0 else None} for k in range(len(stages))])
            transition(conn, rid, ts, actor, "create", None, "active", 0, spec.get("reason") or "created")
            bump_epoch(conn)
        self.invalidate()
        return self.rollout(rid)

    @staticmethod
    def _population(conn: Connection, kind: str, target: dict[str, Any]) -> list[str]:
        """The devices of a target that the registry knows (for the stages' cutoffs)."""
        if kind == "devices":
            return list(target["devices"])
        q = select(devices.c.device_id)
        if kind == "group":
            eff = func.coalesce(device_settings.c.group_name, devices.c.reported_group)
            joined = devices.outerjoin(device_settings, device_settings.c.device_id == devices.c.device_id)
            q = q.select_from(joined).where(eff == target["group"])
        return list(conn.execute(q).scalars())

    def list_rollouts(self, state: str | None = None) -> list[dict[str, Any]]:
        self.tick()
        with self._read() as conn:
            q = select(rollouts).order_by(_R.id.desc())
            if state is not None:
                q = q.where(_R.state == state)
            rows = conn.execute(q).all()
            stages = conn.execute(select(rollout_stages).order_by(_S.rollout_id, _S.stage)).all()
        by_id: dict[int, list[Any]] = {}
        for s in stages:
            by_id.setdefault(int(s.rollout_id), []).append(s)
        return [self._describe(r, by_id.get(int(r.id), []), None) for r in rows]

    def rollout(self, rollout_id: int) -> dict[str, Any]:
        self.tick()
        with self._read() as conn:
            row = conn.execute(select(rollouts).where(_R.id == rollout_id)).first()
            if row is None:
                raise RegistryError(404, f"rollout {rollout_id} does not exist")
            stages = conn.execute(select(rollout_stages).where(_S.rollout_id == rollout_id)
                                  .order_by(_S.stage)).all()
            trans = conn.execute(select(rollout_transitions).where(
                rollout_transitions.c.rollout_id == rollout_id).order_by(rollout_transitions.c.id)).all()
        return self._describe(row, stages, trans)

    def _describe(self, r: Any, stages: list[Any], trans: list[Any] | None) -> dict[str, Any]:
        specs = json.loads(r.stages)
        total_confirmed = sum(s.confirmed for s in stages)
        total_failed = sum(s.failed for s in stages)
        finished = total_confirmed + total_failed
        out: dict[str, Any] = {
            "id": int(r.id), "name": r.name, "version": r.version,
            "target": {"all": True} if r.target_kind == "all" else {"group": r.target_group}
            if r.target_kind == "group" else {"devices": json.loads(r.target_devices or "[]")},
            "state": r.state, "current_stage": int(r.current_stage),
            "success_threshold": r.success_threshold, "soak_s": r.soak_s,
            "failure_threshold": r.failure_threshold, "min_sample": r.min_sample,
            "max_consecutive_failures": r.max_consecutive_failures,
            "consecutive_failures": r.consecutive_failures, "devices": r.admitted,
            "confirmed": total_confirmed, "failed": total_failed,
            "failure_rate": round(total_failed / finished, 4) if finished else None,
            "next_stage_at": _iso(r.advance_due_at),
            "created_at": r.created_at, "created_by": r.created_by, "updated_at": r.updated_at,
            "stages": [{**specs[s.stage], "stage": int(s.stage), "devices": s.devices,
                        "confirmed": s.confirmed, "failed": s.failed, "opened_at": _iso(s.opened_at),
                        "expected": s.expected, "needed": needed(r.success_threshold, s.devices, s.expected),
                        "failure_rate": round(s.failed / (s.confirmed + s.failed), 4)
                        if s.confirmed + s.failed else None} for s in stages],
        }
        if trans is not None:
            out["transitions"] = [{"at": t.at, "actor": t.actor, "action": t.action,
                                   "from_state": t.from_state, "to_state": t.to_state, "stage": int(t.stage),
                                   "reason": t.reason}
                                  for t in trans]
        return out

    def devices(self, rollout_id: int, status: str | None, offset: int, limit: int) -> dict[str, Any]:
        """The devices a rollout offered its release to, by stage and device id, one page."""
        rd = rollout_devices.c
        where = [rd.rollout_id == rollout_id] + ([rd.status == status] if status else [])
        with self._read() as conn:
            if conn.execute(select(_R.id).where(_R.id == rollout_id)).first() is None:
                raise RegistryError(404, f"rollout {rollout_id} does not exist")
            count = select(func.count()).select_from(rollout_devices).where(*where)
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(select(rollout_devices).where(*where).order_by(rd.stage, rd.device_id)
                                .limit(limit).offset(offset)).all()
        items = [{"device_id": r.device_id, "stage": int(r.stage), "status": r.status,
                  "update_id": int(r.update_id), "updated_at": r.updated_at} for r in rows]
        return {"items": items, "total": total, "offset": offset, "limit": limit}

    def act(self, rollout_id: int, action: str, actor: str, reason: str) -> dict[str, Any]:
        """An operator's pause, resume, abort or advance, recorded with who and why."""
        allowed, after = ACTIONS[action]
        ts = self._ts()
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(select(rollouts).where(_R.id == rollout_id).with_for_update()).first()
            if row is None:
                raise RegistryError(404, f"rollout {rollout_id} does not exist")
            if row.state not in allowed:
                raise RegistryError(409, f"rollout {rollout_id} is {row.state}: {action} applies to "
                                         f"{' or '.join(allowed)} rollouts")
            if action == "advance":
                advance(conn, row, ts, now, actor, reason, "advance")
            else:
                assert after is not None
                values: dict[str, Any] = {"state": after, "updated_at": ts, "advance_due_at": None}
                if action == "resume":
                    values["consecutive_failures"] = 0
                conn.execute(update(rollouts).where(_R.id == rollout_id).values(**values))
                transition(conn, rollout_id, ts, actor, action, row.state, after, row.current_stage, reason)
                bump_epoch(conn)
        self.invalidate()
        return self.rollout(rollout_id)

    # -- groups, pins, windows, retries -----------------------------------------------------------
    def _upsert(self, conn: Connection, table: Any, key: str, value: str, **values: Any) -> None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).values({key: value, **values})
        conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=values))

    def set_device(self, device_id: str, actor: str, **values: str | None) -> dict[str, Any]:
        """Set (or with None clear) the operator's ``group_name`` or ``pin_version`` of a device."""
        with self._write() as conn:
            self._upsert(conn, device_settings, "device_id", device_id, updated_at=self._ts(),
                         updated_by=actor, **values)
            bump_epoch(conn)
        self.invalidate()
        return self.device_settings(device_id)

    def device_settings(self, device_id: str) -> dict[str, Any]:
        with self._read() as conn:
            s = conn.execute(select(device_settings).where(device_settings.c.device_id == device_id)).first()
            reported = conn.execute(select(devices.c.reported_group).where(devices.c.device_id == device_id)
                                    ).scalar()
        group = s.group_name if s is not None else None
        return {"device_id": device_id, "group": group or reported, "group_set_by_operator": group,
                "reported_group": reported, "pin": s.pin_version if s is not None else None,
                "updated_at": s.updated_at if s is not None else None,
                "updated_by": s.updated_by if s is not None else None}

    def set_group(self, group: str, actor: str, **values: Any) -> dict[str, Any]:
        """Set (or with None clear) a group's ``pin_version`` or window (``window_start``, ``window_end``)."""
        with self._write() as conn:
            self._upsert(conn, group_settings, "group_name", group, updated_at=self._ts(), updated_by=actor,
                         **values)
            bump_epoch(conn)
        self.invalidate()
        return self.group(group)

    def group(self, group: str) -> dict[str, Any]:
        with self._read() as conn:
            s = conn.execute(select(group_settings).where(group_settings.c.group_name == group)).first()
        return _group(group, s, self.groups_count().get(group, 0))

    def groups_count(self) -> dict[str, int]:
        """Devices per effective group (an operator's setting wins over the reported group)."""
        with self._read() as conn:
            eff = func.coalesce(device_settings.c.group_name, devices.c.reported_group)
            rows = conn.execute(select(eff, func.count()).select_from(
                devices.outerjoin(device_settings, device_settings.c.device_id == devices.c.device_id))
                .where(eff.is_not(None)).group_by(eff)).all()
            unseen = conn.execute(select(device_settings.c.group_name, func.count()).where(
                device_settings.c.group_name.is_not(None),
                device_settings.c.device_id.not_in(select(devices.c.device_id))).group_by(
                device_settings.c.group_name)).all()
        out: dict[str, int] = {}
        for g, n in [*rows, *unseen]:
            out[g] = out.get(g, 0) + int(n)
        return out

    def groups(self) -> list[dict[str, Any]]:
        counts = self.groups_count()
        with self._read() as conn:
            settings = {s.group_name: s for s in conn.execute(select(group_settings)).all()}
        return [_group(g, settings.get(g), counts.get(g, 0)) for g in sorted(set(counts) | set(settings))]

    def allow_retry(self, device_id: str, version: str, actor: str, reason: str) -> dict[str, Any]:
        """Offer ``version`` to the device again although it reverted it (once: a new revert counts)."""
        with self._write() as conn:
            last = conn.execute(select(func.max(updates.c.id)).where(
                updates.c.device_id == device_id, updates.c.version == version,
                updates.c.status == "reverted")).scalar()
            if last is None:
                raise RegistryError(409, f"device {device_id} has not reverted {version}: nothing to retry")
            conn.execute(retries.insert().values(device_id=device_id, version=version, after_update_id=last,
                                                 at=self._ts(), actor=actor, reason=reason))
        return {"device_id": device_id, "version": version, "after_update_id": int(last), "actor": actor,
                "reason": reason}



def _group(name: str, s: Any, devices_count: int) -> dict[str, Any]:
    window = None
    if s is not None and s.window_start is not None and s.window_end is not None:
        window = {"start": hhmm(s.window_start), "end": hhmm(s.window_end)}
    return {"group": name, "devices": devices_count, "pin": s.pin_version if s is not None else None,
            "window": window, "updated_at": s.updated_at if s is not None else None,
            "updated_by": s.updated_by if s is not None else None}


def _iso(t: float | None) -> str | None:
    if t is None or not math.isfinite(t):
        return None
    return now_iso(t)


__all__ = ["ACTIONS", "TERMINAL", "Fleet", "FleetConfig", "Plan"]
