"""The decision as a pure function of the device, its rollout and the release: every state."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter

import pytest
from fota_formats.semver import Version
from fota_server.decision import Decision, Device, decide
from fota_server.firmware import LocalRelease
from fota_server.fleet import FleetConfig
from fota_server.rollout import (
    SPACE,
    Rollout,
    Stage,
    Target,
    Window,
    cutoffs,
    minute_of_day,
    parse_hhmm,
    position,
)

DEV = "0123456789abcdef01234567"


def release(version: str = "1.2.0", downgrade: bool = False) -> LocalRelease:
    files = {"slot-a.bin": b"a" * 100, "slot-b.bin": b"b" * 120}
    return LocalRelease(Version.parse(version), downgrade, {}, files,
                        {n: hashlib.sha256(b).hexdigest() for n, b in files.items()})


def device(version: str = "1.0.0", slot: str = "A", **kw: object) -> Device:
    return Device(DEV, slot, Version.parse(version), **kw)  # type: ignore[arg-type]


def rollout(state: str = "active", current: int = 0, stages: tuple[int, ...] = (10, 50, 100),
            rid: int = 7) -> Rollout:
    return Rollout(rid, "1.2.0", Target("all"), tuple(Stage(percent=p) for p in stages), state,  # type: ignore[arg-type]
                   current)


REL = release()
WINDOW = Window(parse_hhmm("22:00"), parse_hhmm("04:00"))  # spans midnight


def offer(d: Decision) -> bool:
    return d.update


# (name, device, release, rollout, gated) -> update offered?, words in the reason
CASES = [
    ("no release", device(), None, None, False, False, "no release on this server yet"),
    ("newer, no rollout", device(), REL, None, False, True, "newer release"),
    ("already on the release", device("1.2.0"), REL, None, False, False, "up to date"),
    ("already on the release, in a rollout", device("1.2.0", stage=0), REL, rollout(), False, False,
     "up to date"),
    ("older, not a downgrade", device("1.3.0"), REL, None, False, False, "not marked as a downgrade"),
    ("older, marked downgrade", device("1.3.0"), release(downgrade=True), None, False, True, "downgrade"),
    ("reverted before", device(reverted_before=True), REL, None, False, False, "was reverted on this device"),
    ("reverted before, in stage", device(reverted_before=True, stage=0), REL, rollout(), False, False,
     "was reverted"),
    ("in the open stage", device(stage=0), REL, rollout(), False, True, "newer release"),
    ("in an earlier stage", device(stage=0), REL, rollout(current=2), False, True, "newer release"),
    ("in a later stage", device(stage=1), REL, rollout(current=0), False, False,
     "not in an open stage of rollout 7 of 1.2.0 (stage 1 of 3 (10%) open)"),
    ("in no stage (share under 100 %)", device(stage=None), REL, rollout(stages=(10, 50)), False, False,
     "not in an open stage"),
    ("paused", device(stage=0), REL, rollout("paused"), False, False, "rollout 7 of 1.2.0 is paused"),
    ("aborted", device(stage=0), REL, rollout("aborted"), False, False, "rollout 7 of 1.2.0 is aborted"),
    ("completed: every stage open", device(stage=2), REL, rollout("completed", current=2), False, True,
     "newer release"),
    ("completed, but in no stage", device(stage=None), REL, rollout("completed", current=1, stages=(10, 50)),
     False, False, "not in an open stage"),
    ("gated: in none of its rollouts", device(), REL, None, True, False,
     "release 1.2.0 is being rolled out; this device is in none of its rollouts"),
    ("pinned at another version", device(pin="1.1.0"), REL, None, False, False, "held at 1.1.0 by a pin"),
    ("pinned, no such release here", device(pin="1.1.0"), None, None, False, False, "held at 1.1.0 by a pin"),
    ("pinned at the release", device(pin="1.2.0"), REL, None, False, True, "newer release"),
    ("pinned at the running version", device("1.2.0", pin="1.2.0"), REL, None, False, False, "up to date"),
    ("pinned beats an open stage", device(pin="1.0.0", stage=0), REL, rollout(), False, False,
     "held at 1.0.0"),
    ("outside the window", device(group="g", window=WINDOW, minute=parse_hhmm("12:00")), REL, None, False,
     False, "outside the maintenance window of group g (22:00-04:00 UTC)"),
    ("inside the window, before midnight", device(group="g", window=WINDOW, minute=parse_hhmm("23:59")), REL,
     None, False, True, "newer release"),
    ("inside the window, after midnight", device(group="g", window=WINDOW, minute=parse_hhmm("00:30")), REL,
     None, False, True, "newer release"),
    ("window end is outside", device(group="g", window=WINDOW, minute=parse_hhmm("04:00")), REL, None, False,
     False, "outside the maintenance window"),
    ("outside the window, in stage", device(group="g", window=WINDOW, minute=600, stage=0), REL, rollout(),
     False, False, "outside the maintenance window"),
    ("rollout's release not here", device(stage=0), None, rollout(), False, False,
     "release 1.2.0 of rollout 7 is not on this server"),
]


@pytest.mark.parametrize(("dev", "rel", "ro", "gated", "update", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(dev: Device, rel: LocalRelease | None, ro: Rollout | None, gated: bool, update: bool,
                reason: str):
    d = decide(dev, rel, ro, gated)
    assert d.update is update
    assert reason in d.reason


@pytest.mark.parametrize("slot", ["A", "B"])
def test_an_offer_is_the_image_of_the_other_slot_with_its_size_hash_and_rollout(slot: str):
    d = decide(device(slot=slot, stage=1), REL, rollout(current=1))
    other = "B" if slot == "A" else "A"
    name = f"slot-{other.lower()}.bin"
    assert (d.target_slot, d.file, d.size, d.sha256) == (other, name, len(REL.files[name]), REL.sha256[name])
    assert (d.version, d.rollout_id, d.stage, d.downgrade) == ("1.2.0", 7, 1, False)
    assert decide(device(slot=slot), REL).rollout_id is None


def test_decide_is_pure():
    dev, ro = device(stage=0), rollout()
    assert decide(dev, REL, ro) == decide(dataclasses.replace(dev), REL, dataclasses.replace(ro))


# --- stage membership ---------------------------------------------------------------------------------

IDS = [f"{i:024x}" for i in range(10_000)]


STAGES = (Stage(percent=1), Stage(percent=10), Stage(percent=50), Stage(percent=100))


def test_stage_shares_of_10000_known_devices_are_exact():
    r = Rollout(3, "1.2.0", Target("all"), STAGES, cutoffs=cutoffs(3, STAGES, IDS))
    stages = Counter(r.stage_of(d) for d in IDS)
    assert [sum(stages[j] for j in range(k + 1)) for k in range(4)] == [100, 1000, 5000, 10_000]
    # a small fleet: every stage holds at least one device (1 % of 10 rounds up)
    few = IDS[:10]
    small = Rollout(4, "1.2.0", Target("all"), STAGES, cutoffs=cutoffs(4, STAGES, few))
    assert Counter(small.stage_of(d) for d in few) == {0: 1, 2: 4, 3: 5}


def test_devices_seen_after_the_creation_fall_into_stages_by_their_share():
    r = Rollout(3, "1.2.0", Target("all"), STAGES, cutoffs=cutoffs(3, STAGES, IDS))
    later = [f"{i:024x}" for i in range(10_000, 20_000)]
    stages = Counter(r.stage_of(d) for d in later)
    for k, share in enumerate((1, 10, 50, 100)):
        got = sum(stages[j] for j in range(k + 1))
        sd = (len(later) * share / 100 * (1 - share / 100)) ** 0.5  # a hash: binomial spread
        assert abs(got - len(later) * share / 100) <= max(1, 4 * sd), (k, got)
    empty = cutoffs(9, STAGES, [])  # nobody known yet: the shares of the position space
    assert empty == (SPACE // 100, SPACE // 10, SPACE // 2, SPACE)


def test_positions_are_uniform_and_independent_per_rollout():
    a = [position(d, 1) for d in IDS]
    b = [position(d, 2) for d in IDS]
    assert min(a) >= 0 and max(a) < SPACE
    deciles = Counter(x * 10 // SPACE for x in a)
    assert all(880 <= n <= 1120 for n in deciles.values())
    # the first 10 % of one rollout are a different tenth of the fleet in another
    first_a = {d for d, x in zip(IDS, a, strict=True) if x < SPACE // 10}
    first_b = {d for d, x in zip(IDS, b, strict=True) if x < SPACE // 10}
    assert 50 <= len(first_a & first_b) <= 160


def test_a_device_keeps_its_stage():
    r = dataclasses.replace(rollout(stages=(10, 50, 100)), cutoffs=cutoffs(7, STAGES[1:], IDS))
    assert [r.stage_of(d) for d in IDS[:200]] == [r.stage_of(d) for d in IDS[:200]]
    grown = dataclasses.replace(r, current_stage=2, state="paused")
    assert [grown.stage_of(d) for d in IDS[:200]] == [r.stage_of(d) for d in IDS[:200]]


def test_stages_of_fixed_counts_are_admitted_by_the_registry():
    r = Rollout(1, "1.2.0", Target("all"), (Stage(count=2), Stage(count=5)), current_stage=1)
    assert r.by_count and r.stage_of(DEV) is None and r.count_cap() == 7


def test_stage_and_window_values_are_checked():
    with pytest.raises(ValueError, match="exactly one"):
        Stage()
    with pytest.raises(ValueError, match="exactly one"):
        Stage(percent=1, count=1)
    with pytest.raises(ValueError, match="not a minute of the day"):
        Window(0, 1440)
    with pytest.raises(ValueError, match="same time"):
        Window(60, 60)
    for bad in ("24:00", "7:5", "12", "ab:cd", "12:60", "-1:00"):
        with pytest.raises(ValueError, match="is not a time of day"):
            parse_hhmm(bad)
    assert parse_hhmm("7:05") == 425 and minute_of_day(86400 + 3600) == 60


# --- which rollout and release concern a device (FleetConfig.plan) -----------------------------------

def test_plan_without_any_rollout_offers_the_current_release():
    p = FleetConfig().plan(DEV, None, "1.2.0")
    assert (p.rollout, p.gated, p.version) == (None, False, "1.2.0")


def test_plan_rules():
    group_ro = Rollout(5, "1.2.0", Target("group", "east"), (Stage(percent=100),))
    old_all = Rollout(2, "1.1.0", Target("all"), (Stage(percent=100),), "completed")
    cfg = FleetConfig(rollouts=(group_ro, old_all), gated=frozenset({"1.2.0", "1.1.0"}),
                      device_groups={DEV: "east"}, group_pins={"west": "1.0.0"},
                      windows={"east": Window(0, 60)})
    p = cfg.plan(DEV, "west", "1.2.0")  # the operator's group wins over the reported one
    assert (p.group, p.rollout, p.version, p.window) == ("east", group_ro, "1.2.0", Window(0, 60))
    other = "fedcba9876543210fedcba98"
    p = cfg.plan(other, None, "1.2.0")  # held by the older rollout: its release, not the gated 1.2.0
    assert (p.rollout, p.version, p.gated) == (old_all, "1.1.0", False)
    p = cfg.plan(other, "west", "1.2.0")  # the group's pin
    assert (p.pin, p.version, p.rollout) == ("1.0.0", "1.0.0", None)
    # a release without rollouts that is newer than the rollout's goes to everyone, as before
    p = cfg.plan(other, None, "1.3.0")
    assert (p.rollout, p.version, p.gated) == (None, "1.3.0", False)
    # no rollout holds the device and the current release is gated: nothing
    only_group = FleetConfig(rollouts=(group_ro,), gated=frozenset({"1.2.0"}))
    p = only_group.plan(other, None, "1.2.0")
    assert (p.rollout, p.gated) == (None, True)
    assert decide(device(), REL, p.rollout, p.gated).reason.startswith("release 1.2.0 is being rolled out")
