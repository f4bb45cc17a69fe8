"""Anti-rollback on the twin with the real binaries: an image that confirms itself with a higher
security counter raises the journal's floor; from then on BEGIN and VERIFY refuse a lower counter
(ERR_ROLLBACK, nothing changed), and the bootloader never boots the older image again, not even
when the confirmed one is damaged (it stays in the bootloader instead)."""

from __future__ import annotations

import hashlib

import pytest
from fota_formats.image import HDR_SIZE, header_version
from fota_formats.spec import IMAGE, LAYOUT
from fota_lab.images import restamp
from fota_lab.master import BridgeError, BytesSource, LinkError
from fota_testkit.link import SLOT_A, SLOT_B, ST, Builds, boot, drain_log, master, region_bytes, status_of
from stm32_twin.board import Stm32Twin

IC = IMAGE.constants


def _raise_floor_to_2(twin: Stm32Twin, builds: Builds) -> bytes:
    image = restamp(builds.image(builds.v110, "slot-b"), (1, 1, 0), counter=2)
    r = master(twin).update(image)
    assert r.outcome == "confirmed", r.reason
    info = master(twin).info()
    assert (info["running_slot"], info["run_counter"], info["security_floor"]) == (SLOT_B, 2, 2)
    return image


def test_the_floor_rises_only_when_the_new_image_confirms_itself(twin: Stm32Twin, builds: Builds) -> None:
    m = master(twin)
    assert (m.info()["security_floor"], m.info()["run_counter"]) == (1, 1)     # the first boot's
    image = restamp(builds.image(builds.v110, "slot-b"), (1, 1, 0), counter=2)
    r = m.update(image, reset=False)
    assert r.outcome == "activated"
    assert m.info()["security_floor"] == 1                      # on its way, not confirmed: still 1
    twin.reset_pin()
    boot(twin, power=False)
    drain_log(twin)
    assert any(x.startswith("boot: journal seq ") and x.endswith(" trial attempts 3 result 0 floor 1")
               for x in twin.uart_lines), twin.uart_lines[-8:]


def test_begin_and_verify_refuse_a_lower_counter_and_change_nothing(twin: Stm32Twin, builds: Builds) -> None:
    _raise_floor_to_2(twin, builds)
    older = restamp(builds.image(builds.v120, "slot-a"), (1, 2, 0), counter=1)   # newer version, counter 1
    m = master(twin)
    slot_b, journal = region_bytes(twin, "slot_b"), region_bytes(twin, "metadata")
    with pytest.raises(LinkError, match="ERR_ROLLBACK") as e:
        m.update(older, target=SLOT_A)
    assert e.value.status == ST["ERR_ROLLBACK"] and "BEGIN" in str(e.value)
    # A sender that announces counter 2 for it: the image's own SEC_CNT decides at VERIFY.
    m = master(twin)
    m.info()
    link = m.link
    link.begin(SLOT_A, 0, header_version(older), len(older), hashlib.sha256(older).digest(), older[:32], 2)
    link.write_image(BytesSource(older), 0, len(older))
    with pytest.raises(BridgeError, match="STM32 refused VERIFY: ERR_ROLLBACK"):
        link.verify()
    info = m.info()
    assert info["session_status"] == ST["ERR_ROLLBACK"]
    assert status_of(m.link.activate) == ST["ERR_NOT_VERIFIED"]
    assert region_bytes(twin, "slot_b") == slot_b and region_bytes(twin, "metadata") == journal


def test_the_bootloader_never_boots_below_the_floor(twin: Stm32Twin, builds: Builds) -> None:
    """Slot A still holds 1.0.0 (counter 1), validly signed; B (counter 2) confirmed. Damage B: the
    bootloader validates both in full, refuses A for its counter and B for its hash, and stays."""
    _raise_floor_to_2(twin, builds)
    at = LAYOUT.region("slot_b").base - LAYOUT.flash_base + HDR_SIZE + 0x400
    twin.write_flash(at, bytes([twin.flash_bytes(LAYOUT.flash_base + at, 1)[0] ^ 0x01]))
    mark = len(twin.uart_lines)
    twin.reset_pin()
    twin.run(ms=300)
    drain_log(twin)
    lines = twin.uart_lines[mark:]
    assert "boot: slot A invalid rollback v1.0.0+0 counter 1" in lines, lines
    assert "boot: slot B invalid bad-hash" in lines, lines
    assert "boot: no valid image (A rollback, B bad-hash), staying in bootloader" in lines, lines
    assert not any(x.startswith("boot: jump") for x in lines), lines
