"""End-to-end: the STM32 is the judge of what it runs. A tampered release that bypasses every check
before the device (a compromised update server edits its own firmware folder: the image changed
after signing, the folder's manifest fixed up to match, the server restarted so that it serves it)
travels through the real bridge and the SPI link, and the STM32 refuses it at VERIFY on its own:
the running image, its slot and the journal stay as they were, and the server records the refusal.
The bridge's status line and the bootloader's lines name the key the running image is signed with."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from fota_formats.image import HDR_SIZE, build_image, validate_image
from fota_formats.spec import LAYOUT
from fota_lab.lab import Lab
from fota_testkit.e2e import assert_device
from fota_testkit.keys import RELEASE_HASH


def test_a_release_tampered_on_the_server_is_refused_by_the_stm32(lab: Lab,
                                                                  releases: dict[str, Path]) -> None:
    lab.release(releases["1.1.0"])
    assert lab.sync()["status"] == "updated"
    lab.stop_server()
    current = lab.cfg.firmware_dir / "current"
    good = (current / "slot-b.bin").read_bytes()
    info = validate_image(good, 1)
    body = bytearray(good[HDR_SIZE:HDR_SIZE + info.img_size])
    body[len(body) // 2] ^= 0x01                        # a byte of the signed code, after signing
    # Everything a holder of no key can make consistent: the SHA256 TLV, the key hash of the trusted
    # key, the manifest's hash; the Ed25519 signature stays the original one, over other bytes.
    signature = good[-64:]
    image = build_image(bytes(body), 1, (1, 1, 0), info.build, info.security_counter, info.key_hash,
                        lambda _digest: signature)
    (current / "slot-b.bin").write_bytes(image)
    manifest = json.loads((current / "manifest.json").read_bytes())
    manifest["files"]["slot-b.bin"]["sha256"] = hashlib.sha256(image).hexdigest()
    (current / "manifest.json").write_text(json.dumps(manifest))
    lab.start_server()
    journal_before = lab.journal()

    outcome = lab.update()

    assert (outcome.outcome, outcome.version, outcome.slot) == ("failed", "1.0.0", "A"), outcome.lines
    assert outcome.reason == "STM32 refused VERIFY: ERR_SIGNATURE", outcome.reason
    key = RELEASE_HASH[:8]
    assert f"fota: step stm32 slot A version 1.0.0 key {key} counter 1 floor 1 last NONE" in outcome.lines
    assert any(re.fullmatch(rf"boot: slot A valid v1\.0\.0\+\d+ counter 1 key {key}( \(crc\))?", x)
               for x in lab.uart_lines()), lab.uart_lines()[-12:]
    record = lab.updates()[0]
    assert (record["version"], record["outcome"], record["reason"]) == \
        ("1.1.0", "failed", "STM32 refused VERIFY: ERR_SIGNATURE"), record
    assert lab.journal() == journal_before                # nothing was recorded on the device
    assert_device(lab, "A", "1.0.0", "failed", last_result="NONE")
    with lab.locked() as board:                           # slot B holds it, refused, never activated
        assert board.flash_bytes(LAYOUT.region("slot_b").base, len(image)) == image
