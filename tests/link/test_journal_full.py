"""An update into a nearly full journal on the twin, with the real binaries.

The metadata sector is pre-filled so that fewer positions are free than an update needs
(JOURNAL_UPDATE_RESERVE in stm32/lib/journal.h: ACTIVATE's record, one per trial boot, the
confirmation and a margin). BEGIN must then compact the journal after erasing slot B, so that the
TRIAL records never need a compaction: a compaction leaves the journal empty for a moment, and an
empty journal boots the highest version, here the new image, untried.

Power is cut in every flash operation from BEGIN to the end of ACTIVATE's record except the image
programs (slot B's erase, the metadata erase, the compaction record's words, ACTIVATE's words);
after each cut the device boots v1.0.0 from slot A, confirmed, or (once ACTIVATE's record is
complete) v1.1.0 on trial; never v1.1.0 without a trial.
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
    region_bytes,
    try_info,
    wait_confirmed_b,
)
from stm32_twin.board import Stm32Twin

IC = IMAGE.constants
META = LAYOUT.region("metadata")
POSITIONS = META.size // journal.RECORD_SIZE
ROOM = 3                                   # free positions: fewer than ACTIVATE + the trial boots


def _nearly_full(booted_flash: bytes) -> bytes:
    """v1.0.0 in slot A, confirmed in all but ROOM positions of the journal; old data in slot B."""
    flash = bytearray(booted_flash)
    b = LAYOUT.region("slot_b").base - LAYOUT.flash_base
    flash[b:b + 0x1000] = bytes(0x1000)
    meta = META.base - LAYOUT.flash_base
    recs = [journal.Record.confirmed(SLOT_A, seq, (1, 0, 0), last_result=IC["RESULT_CONFIRMED"])
            for seq in range(1, POSITIONS - ROOM + 1)]
    flash[meta:meta + META.size] = journal.sector_with(recs, META.size)
    return bytes(flash)


def _records(twin: Stm32Twin) -> list[journal.Record]:
    return [r for _, r in journal.records(region_bytes(twin, "metadata"))]


@dataclass(frozen=True)
class Baseline:
    start: bytes
    image: bytes
    begin_ops: tuple[int, ...]      # flash operations of BEGIN (erases and the compaction record)
    activate_ops: tuple[int, ...]   # ACTIVATE's record


def _begin(link: object, image: bytes) -> None:
    link.begin(SLOT_B, 0, (1, 1, 0, 0), len(image), hashlib.sha256(image).digest(),  # type: ignore[attr-defined]
               image[:32], image_counter(image))


@pytest.fixture(scope="module")
def baseline(builds: Builds, booted_flash: bytes) -> Baseline:
    start = _nearly_full(booted_flash)
    image = builds.image(builds.v110, "slot-b")
    twin = new_twin(start)
    try:
        boot(twin)
        assert len(_records(twin)) == POSITIONS - ROOM
        link = master(twin).link
        link.info()
        m0 = twin.flash_op_count
        _begin(link, image)
        m1 = twin.flash_op_count
        recs = _records(twin)
        # BEGIN erased slot B's sector and compacted: one CONFIRMED A record, the sequence continuing.
        assert [(r.seq, r.active_slot, r.state) for r in recs] == \
            [(POSITIONS - ROOM + 1, SLOT_A, IC["META_STATE_CONFIRMED"])], recs
        link.write_image(BytesSource(image), 0, len(image))
        link.verify()
        m2 = twin.flash_op_count
        link.activate()
        m3 = twin.flash_op_count
        assert m1 - m0 == 2 + journal.RECORD_SIZE // 4, f"BEGIN: {m1 - m0} flash operations"
        assert m3 - m2 == journal.RECORD_SIZE // 4, f"ACTIVATE: {m3 - m2} flash operations"
        link.reset()
        boot(twin, power=False)
        info = wait_confirmed_b(twin)
        assert info["last_result"] == IC["RESULT_CONFIRMED"]
        # ACTIVATE, the trial boot and the confirmation after the compaction record: no other erase.
        assert len(_records(twin)) == 4
        return Baseline(start, image, tuple(range(m0 + 1, m1 + 1)), tuple(range(m2 + 1, m3 + 1)))
    finally:
        twin.close()


def _cut_points() -> list[str]:
    return [f"begin-{i}" for i in range(2 + 8)] + [f"activate-{i}" for i in range(8)]


@pytest.mark.parametrize("point", _cut_points())
def test_power_cut_in_begin_compaction_or_activate(baseline: Baseline, point: str) -> None:
    phase, index = point.split("-")
    ops = baseline.begin_ops if phase == "begin" else baseline.activate_ops
    op = ops[int(index)]
    twin = new_twin(baseline.start)
    try:
        twin.cut_power_at_flash_op(op)
        boot(twin)
        link = master(twin).link
        with contextlib.suppress(LinkError, BridgeError):   # the link dies with the power
            link.info()
            _begin(link, baseline.image)
            link.write_image(BytesSource(baseline.image), 0, len(baseline.image))
            link.verify()
            link.activate()
        assert not twin.powered, f"power was not cut at operation {op}"
        twin.power_on()
        mark = len(twin.uart_lines)
        boot(twin, power=False)
        jumps = [line for line in twin.uart_lines[mark:] if line.startswith("boot: jump")]
        assert len(jumps) == 1, twin.uart_lines[mark:]
        # v1.0.0 as before (its record, or the first-boot rule with only slot A valid), or v1.1.0
        # on trial once ACTIVATE's record is whole; never v1.1.0 untried.
        old = jumps[0].startswith("boot: jump slot A v1.0.0+0 (") and \
            ("(confirmed)" in jumps[0] or "(no-record)" in jumps[0])
        trial = jumps[0].startswith("boot: jump slot B v1.1.0+0 (trial") and phase == "activate"
        assert old or trial, f"cut at {point}: {jumps[0]}"
        # The update, run again from there, ends with v1.1.0 confirmed.
        if old:
            r = master(twin).update(baseline.image, confirm_timeout_ms=CONFIRM_WAIT_MS)
            assert r.outcome == "confirmed", f"cut at {point}: retry ended {r.outcome} {r.reason}"
        else:
            wait_confirmed_b(twin)
        info = try_info(twin)
        assert info is not None and info["running_slot"] == SLOT_B and info["run_minor"] == 1, info
    finally:
        twin.close()
