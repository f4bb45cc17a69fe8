"""The fleet's statements that run inside the registry's transactions: offers and outcomes.

:meth:`fota_server.registry.Registry.open_update` enrols a device in its rollout with the offer
(:func:`enrol`), and :meth:`~fota_server.registry.Registry.report` counts a result into the
rollout's stage (:func:`account`): counters kept as reports arrive, so no check-in or report ever
scans the update history. An outcome may pause the rollout (failure rate of the stage over the
threshold with enough finished devices, or too many failures in a row) or schedule its next stage
(enough confirmed devices; the soak time counted from the stage's opening).
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fota_server.db.schema import fleet_epoch, rollout_devices, rollout_stages, rollout_transitions, rollouts

EPOCH = "epoch"
SERVER_ACTOR = "server"
_R = rollouts.c
_S = rollout_stages.c
_RD = rollout_devices.c


class StageFull(Exception):
    """A stage of fixed counts has admitted all its devices: no offer (the transaction rolls back)."""


def bump_epoch(conn: Connection) -> None:
    """The fleet's configuration changed: every server process reloads it at its next check-in."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(fleet_epoch).values(name=EPOCH, value=1)
    conn.execute(stmt.on_conflict_do_update(index_elements=[fleet_epoch.c.name],
                                            set_={"value": fleet_epoch.c.value + 1}))


def transition(conn: Connection, rollout_id: int, ts: str, actor: str, action: str, from_state: str | None,
               to_state: str, stage: int, reason: str) -> None:
    conn.execute(rollout_transitions.insert().values(
        rollout_id=rollout_id, at=ts, actor=actor, action=action, from_state=from_state, to_state=to_state,
        stage=stage, reason=reason))


def _stage_counts(conn: Connection, rollout_id: int, stage: int) -> Any:
    return conn.execute(select(_S.devices, _S.confirmed, _S.failed, _S.expected).where(
        _S.rollout_id == rollout_id, _S.stage == stage)).one()


def _count(conn: Connection, rollout_id: int, stage: int, **delta: int) -> None:
    conn.execute(update(rollout_stages).where(_S.rollout_id == rollout_id, _S.stage == stage).values(
        **{k: getattr(_S, k) + v for k, v in delta.items()}))


def enrol(conn: Connection, rollout_id: int, device_id: str, stage: int | None, current_stage: int,
          cap: int | None, update_id: int, ts: str) -> int:
    """Record the offer of ``update_id`` in the rollout; the device's stage. A device offered again
    (after a failure) keeps its stage and its earlier outcome is taken back from the counters.
    ``stage`` None: stages of fixed counts, the device is admitted into the current stage while fewer
    than ``cap`` devices are (:class:`StageFull` otherwise)."""
    row = conn.execute(select(_RD.stage, _RD.status).where(
        _RD.rollout_id == rollout_id, _RD.device_id == device_id).with_for_update()).first()
    if row is not None:
        if row.status in ("failed", "reverted"):
            _count(conn, rollout_id, row.stage, failed=-1)
        elif row.status == "confirmed":
            _count(conn, rollout_id, row.stage, confirmed=-1)
        conn.execute(update(rollout_devices).where(_RD.rollout_id == rollout_id, _RD.device_id == device_id)
                     .values(status="offered", update_id=update_id, updated_at=ts))
        return int(row.stage)
    admit = update(rollouts).where(_R.id == rollout_id).values(admitted=_R.admitted + 1)
    if cap is not None:
        admit = admit.where(_R.admitted < cap)
    if conn.execute(admit).rowcount == 0:
        raise StageFull
    if stage is None:
        stage = current_stage
    _count(conn, rollout_id, stage, devices=1)
    conn.execute(rollout_devices.insert().values(rollout_id=rollout_id, device_id=device_id, stage=stage,
                                                 status="offered", update_id=update_id, updated_at=ts))
    return stage


def account(conn: Connection, rollout_id: int, device_id: str, update_id: int, outcome: str, ts: str,
            now: float) -> str | None:
    """Count a result into its rollout; a message when the rollout paused itself."""
    row = conn.execute(select(_RD.stage, _RD.update_id).where(
        _RD.rollout_id == rollout_id, _RD.device_id == device_id).with_for_update()).first()
    if row is None or row.update_id != update_id:
        return None  # an older offer of this device; its newer one counts
    good = outcome == "confirmed"
    conn.execute(update(rollout_devices).where(_RD.rollout_id == rollout_id, _RD.device_id == device_id)
                 .values(status=outcome, updated_at=ts))
    _count(conn, rollout_id, row.stage, **({"confirmed": 1} if good else {"failed": 1}))
    conn.execute(update(rollouts).where(_R.id == rollout_id).values(
        consecutive_failures=0 if good else _R.consecutive_failures + 1))
    r = conn.execute(select(rollouts).where(_R.id == rollout_id).with_for_update()).one()
    if r.state != "active":
        return None
    if not good:
        reason = failure_reason(r, _stage_counts(conn, rollout_id, row.stage), row.stage)
        if reason is None:
            return None
        conn.execute(update(rollouts).where(_R.id == rollout_id).values(
            state="paused", advance_due_at=None, updated_at=ts))
        transition(conn, rollout_id, ts, SERVER_ACTOR, "pause", "active", "paused", r.current_stage, reason)
        bump_epoch(conn)
        return reason
    if row.stage == r.current_stage and r.advance_due_at is None:
        devices, confirmed, _failed, expected = _stage_counts(conn, rollout_id, r.current_stage)
        if confirmed >= needed(r.success_threshold, devices, expected):
            conn.execute(update(rollouts).where(_R.id == rollout_id).values(
                advance_due_at=max(now, r.stage_opened_at + r.soak_s), updated_at=ts))
            bump_epoch(conn)
    return None


def needed(success_threshold: float, devices: int, expected: int | None) -> int:
    """Confirmed devices that open the next stage: the share of the devices the stage is for (its
    count, or its share of the devices known at the rollout's creation; when none were known, of
    the devices offered so far), at least one."""
    base = expected if expected else devices
    return max(1, math.ceil(success_threshold * base - 1e-9))


def failure_reason(r: Any, counts: Any, stage: int) -> str | None:
    """Why the rollout stops itself now (None: it goes on)."""
    limit = r.max_consecutive_failures
    if limit and r.consecutive_failures >= limit:
        return f"{r.consecutive_failures} failures in a row (limit {limit})"
    _devices, confirmed, failed, _expected = counts
    finished = confirmed + failed
    if finished >= r.min_sample and failed / finished > r.failure_threshold:
        return (f"stage {stage + 1}: {failed} of {finished} finished devices failed "
                f"({100 * failed / finished:.0f}%), over the threshold of {100 * r.failure_threshold:g}%")
    return None


def advance(conn: Connection, r: Any, ts: str, now: float, actor: str, reason: str, action: str) -> str:
    """Open the next stage of rollout ``r`` (a row read under lock), or complete it after its last; the
    new state."""
    last = len_stages(r) - 1
    if r.current_stage >= last:
        conn.execute(update(rollouts).where(_R.id == r.id).values(
            state="completed", advance_due_at=None, updated_at=ts))
        transition(conn, r.id, ts, actor, action, r.state, "completed", r.current_stage, reason)
        bump_epoch(conn)
        return "completed"
    stage = r.current_stage + 1
    conn.execute(update(rollouts).where(_R.id == r.id).values(
        current_stage=stage, stage_opened_at=now, advance_due_at=None, updated_at=ts))
    conn.execute(update(rollout_stages).where(_S.rollout_id == r.id, _S.stage == stage).values(opened_at=now))
    transition(conn, r.id, ts, actor, action, r.state, r.state, stage, reason)
    bump_epoch(conn)
    return str(r.state)


def len_stages(r: Any) -> int:
    return len(json.loads(r.stages))
