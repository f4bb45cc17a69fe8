"""Every bad signed image is refused by the real firmware on the twin, each with its own status, and
nothing the device runs on changes: the running slot A, the metadata journal, the session. And the
bootloader refuses, on its own, a trial image whose signed bytes changed after the agent verified it.

Images are the v1.1.0 build's slot-B image (signed with the run's key, which the firmware trusts),
altered one way each.
"""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_formats.image import HDR_SIZE, TLV_INFO, TLV_SHA256, validate_image
from fota_formats.spec import IMAGE, LAYOUT
from fota_lab.images import restamp
from fota_lab.master import LinkError
from fota_testkit.link import SLOT_A, SLOT_B, ST, Builds, boot, drain_log, master, region_bytes, status_of
from stm32_twin.board import Stm32Twin

IC = IMAGE.constants


def _signed_end(image: bytes) -> int:
    info = validate_image(image)
    return info.signed_size


def unsigned(image: bytes) -> bytes:
    """The same image with only its SHA256 TLV: no key hash, no signature."""
    end = _signed_end(image)
    sha = image[end + TLV_INFO.size:end + TLV_INFO.size + 36]
    assert struct.unpack_from("<H", sha)[0] == TLV_SHA256
    return image[:end] + TLV_INFO.pack(magic=IC["IMAGE_TLV_INFO_MAGIC"], tlv_tot=TLV_INFO.size + 36) + sha


def flipped(image: bytes, at: int) -> bytes:
    return image[:at] + bytes([image[at] ^ 0x01]) + image[at + 1:]


def tlv_tot(image: bytes, delta: int) -> bytes:
    """The unprotected area's size field off by ``delta`` (the bytes unchanged)."""
    at = _signed_end(image) + 2
    value = struct.unpack_from("<H", image, at)[0] + delta
    return image[:at] + struct.pack("<H", value) + image[at + 2:]


def cases(builds: Builds) -> dict[str, tuple[bytes, str]]:
    good = builds.image(builds.v110, "slot-b")
    end = _signed_end(good)
    return {
        "unsigned": (unsigned(good), "ERR_UNSIGNED"),
        "signed by an unknown key": (restamp(good, (1, 1, 0), key=Ed25519PrivateKey.generate()),
                                     "ERR_UNKNOWN_KEY"),
        "signature flipped": (flipped(good, len(good) - 1), "ERR_SIGNATURE"),
        "code byte flipped": (flipped(good, HDR_SIZE + 0x400), "ERR_SIGNATURE"),
        "header byte flipped": (flipped(good, 24), "ERR_SIGNATURE"),                  # ver_build
        # the SEC_CNT value 1 -> 257 (above the floor: the signature, not the counter, refuses it)
        "security counter changed": (flipped(good, end - 11), "ERR_SIGNATURE"),
        "TLV area truncated": (good[:-64], "ERR_TLV"),
        "TLV area overlong": (tlv_tot(good, 8), "ERR_TLV"),
        "image for the other slot": (builds.image(builds.v110, "slot-a"), "ERR_WRONG_SLOT"),
    }


CASES = ["unsigned", "signed by an unknown key", "signature flipped", "code byte flipped",
         "header byte flipped", "security counter changed", "TLV area truncated", "TLV area overlong",
         "image for the other slot"]


@pytest.mark.parametrize("case", CASES)
def test_verify_refuses_the_image_and_changes_nothing_the_device_runs_on(twin: Stm32Twin, builds: Builds,
                                                                         case: str) -> None:
    image, status = cases(builds)[case]
    m = master(twin)
    slot_a, journal = region_bytes(twin, "slot_a"), region_bytes(twin, "metadata")
    with pytest.raises(LinkError, match=status) as e:
        m.update(image, target=SLOT_B)
    assert e.value.status == ST[status]
    assert "VERIFY" in str(e.value)
    assert region_bytes(twin, "slot_a") == slot_a and region_bytes(twin, "metadata") == journal
    info = m.info()
    assert info["running_slot"] == SLOT_A and info["meta_active"] == SLOT_A
    assert info["session_status"] == ST[status]
    assert info["b_state"] == IC["SLOT_STATE_INVALID"]
    # Nothing to activate: the refused image never runs.
    assert status_of(m.link.activate) == ST["ERR_NOT_VERIFIED"]
    assert region_bytes(twin, "metadata") == journal


def test_the_bootloader_refuses_a_trial_image_changed_after_verify(twin: Stm32Twin, builds: Builds) -> None:
    """ACTIVATE has recorded the trial; then one byte of the signed image changes in flash (a
    probe, a glitch): the bootloader checks the signature before the first trial boot, refuses
    the image with its own reason in the log, and goes back to slot A."""
    good = builds.image(builds.v110, "slot-b")
    r = master(twin).update(good, reset=False)
    assert r.outcome == "activated"
    at = LAYOUT.region("slot_b").base - LAYOUT.flash_base + HDR_SIZE + 0x400
    twin.write_flash(at, bytes([twin.flash_bytes(LAYOUT.flash_base + at, 1)[0] ^ 0x01]))
    mark = len(twin.uart_lines)
    twin.reset_pin()
    boot(twin, power=False)
    drain_log(twin)
    lines = twin.uart_lines[mark:]
    assert "boot: slot B invalid bad-hash" in lines, lines
    info = master(twin).info()
    assert info["running_slot"] == SLOT_A
    assert info["last_result"] == IC["RESULT_REVERTED_INVALID"]


def test_the_boot_log_names_the_key_of_each_valid_image(twin: Stm32Twin, builds: Builds) -> None:
    r = master(twin).update(builds.image(builds.v110, "slot-b"))
    assert r.outcome == "confirmed", r.reason
    key = validate_image(builds.image(builds.v110, "slot-b")).key_id
    prefix = "boot: slot B valid v1.1.0+0 counter 1 key " + key
    assert any(line.startswith(prefix) for line in twin.uart_lines), twin.uart_lines
