"""Power cuts during a whole update, MCUboot-style.

A baseline update A (v1.0.0) -> B (v1.1.0) is counted first, phase by phase, in flash operations:
BEGIN's erase, the WRITE programs, ACTIVATE's journal record, the bootloader's trial-boot record
after the reset, and the application's confirmation record. Then, from the same starting flash,
power is cut in the middle of one chosen operation (the twin leaves a partly programmed word or a
partly erased sector, as the chip would); after each cut the device must boot a valid image (the
old one, or the new one once ACTIVATE's record is complete), and a retried update must end with
v1.1.0 confirmed in slot B. Cut points: every erase, every journal program, and at least 200
programs spread evenly over the image. The cut points are split into shards so that pytest-xdist
can run them in parallel; each shard reports what it covered.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import pytest
from fota_formats import journal
from fota_formats.image import image_counter
from fota_formats.spec import IMAGE, LAYOUT
from fota_lab.master import BridgeError, BytesSource, LinkError
from fota_testkit.link import (
    CONFIRM_WAIT_MS,
    SLOT_A,
    SLOT_B,
    Builds,
    boot,
    master,
    new_twin,
    try_info,
    wait_confirmed_b,
)

IC = IMAGE.constants
SHARDS = 6
PROGRAM_CUTS = 200                         # program operations cut, spread over the image
RETRY_EVERY = 25                           # program cuts followed by a full retry: 1 in 25


@dataclass(frozen=True)
class Baseline:
    start: bytes                 # flash before the update
    image: bytes
    erases: tuple[int, ...]      # flash operation numbers, counted from power-on
    programs: tuple[int, ...]
    journal: tuple[int, ...]
    activate_done: int           # the last operation of ACTIVATE's record


def _start_flash(booted_flash: bytes) -> bytes:
    """v1.0.0 running in slot A and confirmed in the journal (as after an earlier update), old data
    in slot B's first sector (BEGIN must erase it)."""
    flash = bytearray(booted_flash)
    off = LAYOUT.region("slot_b").base - LAYOUT.flash_base
    flash[off:off + 0x1000] = bytes(0x1000)
    rec = journal.Record.confirmed(SLOT_A, 1, (1, 0, 0), last_result=IC["RESULT_CONFIRMED"]).pack()
    meta = LAYOUT.region("metadata").base - LAYOUT.flash_base
    flash[meta:meta + len(rec)] = rec
    return bytes(flash)


@pytest.fixture(scope="module")
def baseline(builds: Builds, booted_flash: bytes) -> Baseline:
    start = _start_flash(booted_flash)
    image = builds.image(builds.v110, "slot-b")
    twin = new_twin(start)
    boot(twin)
    link = master(twin).link
    marks = [twin.flash_op_count]
    link.info()
    link.begin(SLOT_B, 0, (1, 1, 0, 0), len(image), hashlib.sha256(image).digest(), image[:32],
               image_counter(image))
    marks.append(twin.flash_op_count)
    link.write_image(BytesSource(image), 0, len(image))
    link.verify()
    marks.append(twin.flash_op_count)
    link.activate()
    marks.append(twin.flash_op_count)
    link.reset()
    boot(twin, power=False)
    wait_confirmed_b(twin)
    marks.append(twin.flash_op_count)
    twin.close()
    erases = tuple(range(marks[0] + 1, marks[1] + 1))
    programs = tuple(range(marks[1] + 1, marks[2] + 1))
    journal = tuple(range(marks[2] + 1, marks[4] + 1))
    assert len(erases) == 1 and len(programs) >= len(image) // 4 * 9 // 10 and len(journal) >= 3 * 8
    return Baseline(start, image, erases, programs, journal, marks[3])


def cut_points(b: Baseline) -> list[int]:
    step = len(b.programs) / PROGRAM_CUTS
    spread = [b.programs[int(i * step)] for i in range(PROGRAM_CUTS)]
    return sorted(set(b.erases) | set(b.journal) | set(spread))


def _cut_and_recover(b: Baseline, op: int, retry: bool) -> str:
    """Run the update with power cut in flash operation ``op``; after the reboot a valid image must
    run. With ``retry``, a new update must then complete: v1.1.0 activated, booted and (when the
    cut hit the journal, i.e. the activation, the trial boot or the confirmation) confirmed.
    Returns the image that booted first after the cut ("old" or "new")."""
    twin = new_twin(b.start)
    try:
        twin.cut_power_at_flash_op(op)
        boot(twin)
        with contextlib.suppress(LinkError, BridgeError):   # the link dies with the power
            master(twin).update(b.image, confirm_timeout_ms=CONFIRM_WAIT_MS)
        assert not twin.powered, f"power was not cut at operation {op}"

        twin.power_on()
        boot(twin, power=False)
        info = try_info(twin)
        assert info is not None, f"cut at {op}: no INFO after the reboot"
        slot = info["running_slot"]
        version = (info["run_major"], info["run_minor"], info["run_patch"])
        state = info["a_state"] if slot == SLOT_A else info["b_state"]
        assert state == IC["SLOT_STATE_VALID"], f"cut at {op}: running slot {slot} is not valid"
        if (slot, version) == (SLOT_A, (1, 0, 0)):
            first = "old"
            assert op <= b.activate_done, f"cut at {op}: the activated update was lost"
        else:
            assert (slot, version) == (SLOT_B, (1, 1, 0)), f"cut at {op}: runs {slot} {version}"
            assert op > b.activate_done - 8, f"cut at {op}: the new image booted before ACTIVATE"
            first = "new"
        if not retry:
            return first
        if first == "old":
            r = master(twin).update(b.image, reset=False)
            assert r.outcome == "activated", f"cut at {op}: retry ended {r.outcome} {r.reason}"
            twin.reset_pin()
            boot(twin, power=False)
            info = try_info(twin)
            assert info is not None and info["running_slot"] == SLOT_B and info["run_minor"] == 1, info
        if op in b.journal or first == "new":
            wait_confirmed_b(twin)
        assert twin.flash_bytes(LAYOUT.region("slot_b").base, len(b.image)) == b.image
        return first
    finally:
        twin.close()


def _retry_here(b: Baseline, op: int) -> bool:
    """Full retry after every erase and journal cut and after every RETRY_EVERY-th program cut;
    the other program cuts leave the same kind of state (slot B partly written, journal intact)."""
    if op not in b.programs:
        return True
    return b.programs.index(op) // max(1, len(b.programs) // PROGRAM_CUTS) % RETRY_EVERY == 0


@pytest.mark.parametrize("shard", range(SHARDS))
def test_power_cut_at_every_erase_journal_write_and_200_programs(baseline: Baseline, shard: int) -> None:
    points = cut_points(baseline)[shard::SHARDS]
    seen = {"old": 0, "new": 0}
    retried = 0
    for op in points:
        retry = _retry_here(baseline, op)
        seen[_cut_and_recover(baseline, op, retry)] += 1
        retried += retry
    total = cut_points(baseline)
    print(f"\npower cuts shard {shard}: {len(points)} of {len(total)} cut points (the update has "
          f"{len(baseline.erases)} erase, {len(baseline.programs)} programs, {len(baseline.journal)} "
          f"journal programs); first boot old {seen['old']}, new {seen['new']}; retried {retried}")
    assert sum(seen.values()) == len(points)


def test_cut_points_cover_every_flash_operation(baseline: Baseline) -> None:
    points = set(cut_points(baseline))
    assert set(baseline.erases) <= points and set(baseline.journal) <= points
    assert len(points & set(baseline.programs)) >= 200
