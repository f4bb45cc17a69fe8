"""A fresh device (journal erased) on the twin: its first boot records the running image as
confirmed, so an update interrupted before its activation is complete never starts the new image
without a trial (without that record the bootloader would pick the highest version, the new one).
"""

from __future__ import annotations

import contextlib
import hashlib
import re

import pytest
from fota_formats.image import image_counter
from fota_formats.spec import IMAGE, LAYOUT
from fota_lab.master import BridgeError, BytesSource, LinkError
from fota_testkit.link import SLOT_A, SLOT_B, Builds, boot, master, new_twin, region_bytes
from stm32_twin.board import Stm32Twin

IC = IMAGE.constants
RECORD = IMAGE.structs["meta_record"].size
CRC_FIELD = next(f.offset for f in IMAGE.structs["meta_record"].fields if f.name == "image_crc")


def _fresh(builds: Builds) -> Stm32Twin:
    twin = new_twin(build=builds.v100)
    assert set(region_bytes(twin, "metadata")) == {0xFF}
    boot(twin)
    assert "boot: journal empty" in twin.uart_lines
    assert "boot: first boot: journal seq 1 slot A confirmed" in twin.uart_lines
    assert any(line.startswith("boot: jump slot A v1.0.0+0 (no-record)") for line in twin.uart_lines)
    return twin


def _written_and_verified(twin: Stm32Twin, image: bytes) -> object:
    link = master(twin).link
    link.info()
    link.begin(SLOT_B, 0, (1, 1, 0, 0), len(image), hashlib.sha256(image).digest(), image[:32],
               image_counter(image))
    link.write_image(BytesSource(image), 0, len(image))
    link.verify()
    return link


def _old_image_boots_confirmed(twin: Stm32Twin) -> None:
    mark = len(twin.uart_lines)
    boot(twin, power=False)
    info = master(twin).info()
    assert (info["running_slot"], info["run_major"], info["run_minor"]) == (SLOT_A, 1, 0)
    assert info["meta_active"] == SLOT_A and info["meta_state"] == IC["META_STATE_CONFIRMED"]
    assert info["b_state"] == IC["SLOT_STATE_VALID"] and info["b_minor"] == 1   # v1.1.0 is there
    lines = twin.uart_lines[mark:]
    assert any(line.startswith("boot: jump slot A v1.0.0+0 (confirmed)") for line in lines), lines


def test_first_boot_records_the_running_image(builds: Builds) -> None:
    twin = _fresh(builds)
    try:
        info = master(twin).info()
        assert info["meta_active"] == SLOT_A and info["meta_state"] == IC["META_STATE_CONFIRMED"]
        assert info["meta_seq"] == 1 and info["last_result"] == IC["RESULT_NONE"]
        twin.reset_pin()                      # the second boot obeys the record, appends nothing
        boot(twin, power=False)
        assert master(twin).info()["meta_seq"] == 1
    finally:
        twin.close()


@pytest.mark.parametrize("word", [0, RECORD // 4 - 1], ids=["first-word", "crc-word"])
def test_power_cut_in_activate_journal_write_boots_old_image(builds: Builds, word: int) -> None:
    twin = _fresh(builds)
    try:
        link = _written_and_verified(twin, builds.image(builds.v110, "slot-b"))
        twin.cut_power_at_flash_op(twin.flash_op_count + 1 + word)
        with contextlib.suppress(LinkError, BridgeError):   # the link dies with the power
            link.activate()
        assert not twin.powered, "the power cut did not happen during ACTIVATE"
        second = region_bytes(twin, "metadata")[RECORD:2 * RECORD]
        assert second != b"\xff" * RECORD, "ACTIVATE's record was not started"
        twin.power_on()
        _old_image_boots_confirmed(twin)
    finally:
        twin.close()


def test_reset_between_verify_and_activate_boots_old_image(builds: Builds) -> None:
    twin = _fresh(builds)
    try:
        _written_and_verified(twin, builds.image(builds.v110, "slot-b"))
        twin.reset_pin()
        _old_image_boots_confirmed(twin)
    finally:
        twin.close()


def test_confirmed_boot_checks_the_recorded_crc_and_hashes_on_a_mismatch(builds: Builds) -> None:
    """Validate once: the first-boot record holds the CRC of slot A's image, so the next boot checks
    that instead of the SHA-256; a decayed bit fails the CRC and the full validation then refuses
    the image."""
    twin = _fresh(builds)
    try:
        record = region_bytes(twin, "metadata")[:RECORD]
        assert int.from_bytes(record[CRC_FIELD:CRC_FIELD + 4], "little") != 0
        mark = len(twin.uart_lines)
        twin.reset_pin()
        boot(twin, power=False)
        lines = twin.uart_lines[mark:]
        by_crc = re.compile(r"boot: slot A valid v1\.0\.0\+0 counter 1 key [0-9a-f]{8} \(crc\)")
        assert any(by_crc.fullmatch(x) for x in lines), lines
        assert "boot: slot B empty" in lines, lines
        # One bit of the image's code decays (a set bit clears, as a flash cell loses charge).
        off = LAYOUT.region("slot_a").base - LAYOUT.flash_base + 0x800
        old = twin.flash_bytes(LAYOUT.flash_base + off, 1)[0]
        assert old != 0
        twin.write_flash(off, bytes([old & (old - 1)]))
        mark = len(twin.uart_lines)
        twin.reset_pin()
        twin.run(ms=300)
        lines = twin.uart_lines[mark:]
        assert "boot: slot A invalid bad-hash" in lines, lines
        assert any(line.startswith("boot: no valid image (A bad-hash, B erased)") for line in lines), lines
    finally:
        twin.close()
