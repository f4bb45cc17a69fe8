"""End-to-end: releases reach the STM32 through S3, the server, the bridge (mpremote) and the SPI link,
or are kept away from it (a corrupted object in S3, S3 down during a sync, an image that hangs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fota_formats.spec import LAYOUT
from fota_lab import locals3
from fota_lab.lab import Lab
from fota_testkit.e2e import assert_device


def release_and_sync(lab: Lab, folder: Path) -> dict[str, object]:
    lab.release(folder)
    return lab.sync()


def test_two_successive_updates_a_to_b_to_a(lab: Lab, releases: dict[str, Path]) -> None:
    assert_device(lab, "A", "1.0.0", None, last_result="NONE")
    assert release_and_sync(lab, releases["1.1.0"])["status"] == "updated"
    first = lab.update()
    assert (first.outcome, first.version, first.slot) == ("confirmed", "1.1.0", "B"), first.lines
    assert_device(lab, "B", "1.1.0", "confirmed")
    slot_b = LAYOUT.region("slot_b").base
    image = (releases["1.1.0"] / "slot-b.bin").read_bytes()
    with lab.locked() as board:
        assert board.flash_bytes(slot_b, len(image)) == image

    assert release_and_sync(lab, releases["1.2.0"])["status"] == "updated"
    second = lab.update()
    assert (second.outcome, second.version, second.slot) == ("confirmed", "1.2.0", "A"), second.lines
    assert_device(lab, "A", "1.2.0", "confirmed")
    history = lab.device()["updates"]
    assert [(u["version"], u["target_slot"], u["outcome"]) for u in history] == [
        ("1.2.0", "A", "confirmed"), ("1.1.0", "B", "confirmed")]
    assert lab.device()["running_version"] == "1.2.0"


def test_corrupted_slot_b_in_s3_never_reaches_the_device(lab: Lab, releases: dict[str, Path]) -> None:
    lab.release(releases["1.1.0"])
    store = lab.store()
    good = (releases["1.1.0"] / "slot-b.bin").read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    for key in ("slot-b.bin", "releases/1.1.0/slot-b.bin"):  # the release's copy and the top-level one
        store.client.put_object(Bucket=store.bucket, Key=store.config.key(key), Body=bytes(bad))
    result = lab.sync()
    assert result["status"] == "error" and "differs from the manifest" in str(result["message"]), result
    status = lab.api.status()
    assert status["version"] is None, status   # nothing valid was ever synced: nothing is offered
    outcome = lab.update()
    assert outcome.outcome == "none" and outcome.version == "1.0.0", outcome.lines
    assert_device(lab, "A", "1.0.0", None, last_result="NONE")
    with lab.locked() as board:
        slot_b = board.flash_bytes(LAYOUT.region("slot_b").base, len(bad))
    assert hashlib.sha256(slot_b).digest() != hashlib.sha256(bytes(bad)).digest()
    assert slot_b == b"\xff" * len(bad)            # not one byte of it was written


def test_image_that_hangs_after_boot_is_reverted_and_reported(lab: Lab, releases: dict[str, Path]) -> None:
    release_and_sync(lab, releases["1.1.0-hang"])
    outcome = lab.update()
    assert (outcome.outcome, outcome.version, outcome.slot) == ("reverted", "1.0.0", "A"), outcome.lines
    assert outcome.reason in ("REVERTED_NO_CONFIRM", "REVERTED_WATCHDOG"), outcome.reason
    assert any("variant hang: stopping here" in x for x in lab.uart_lines())   # it did boot and hang
    assert_device(lab, "A", "1.0.0", "reverted", last_result=outcome.reason)
    record = lab.device()["updates"][0]
    assert (record["version"], record["result_slot"], record["result_version"]) == ("1.1.0", "A", "1.0.0")


def test_s3_unreachable_during_sync_keeps_serving_the_old_one(lab: Lab, releases: dict[str, Path]) -> None:
    assert release_and_sync(lab, releases["1.1.0"])["status"] == "updated"
    lab.release(releases["1.2.0"])
    locals3.stop(lab.cfg)                      # S3 goes away before the server sees 1.2.0
    result = lab.sync()
    assert result["status"] == "error", result
    assert lab.api.status()["version"] == "1.1.0"
    outcome = lab.update()
    assert (outcome.outcome, outcome.version, outcome.slot) == ("confirmed", "1.1.0", "B"), outcome.lines
    assert_device(lab, "B", "1.1.0", "confirmed")
