"""The reference master (fota_lab.master): the bridge's fotalink under CPython, on the fake STM32."""

from __future__ import annotations

import pytest
from fake_stm32 import Clock, FakePort, FakeSTM32
from fota_lab import master
from fota_lab.master import LinkError, Master
from images import make_image
from stm32_fota.project import current

OLD = make_image(0, (1, 0, 0), 30_000)
NEW = make_image(1, (1, 2, 0), 128 * 1024, build=9)


def test_master_reuses_the_bridge_module() -> None:
    fotalink = master.bridge_module("fotalink")
    assert fotalink.__file__ == str(current().bridge_dir / "fotalink.py")
    assert master.BridgeError is fotalink.BridgeError


def test_update_reports_outcome_timings_and_wire_bytes() -> None:
    dev = FakeSTM32(Clock(), {0: OLD})
    r = Master(FakePort(dev)).update(NEW)
    assert r.outcome == "confirmed" and r.target_slot == 1 and r.version == (1, 2, 0, 9)
    assert r.info_after is not None and r.info_after["running_slot"] == 1
    assert bytes(dev.flash[1][: len(NEW)]) == NEW
    # The fake erases one 128 KB sector (1 s) and programs 16 us per word: the write phase is
    # bounded below by the programming time and the whole BEGIN..ACTIVATE by erase + program.
    program_ms = len(NEW) / 4 * 0.016
    assert r.phases_ms["begin"] >= 1000
    # (the last chunk programs while VERIFY waits for READY)
    programmed = r.phases_ms["write"] + r.phases_ms["verify"]
    assert program_ms <= programmed <= program_ms * 1.1 + 25
    assert 1.0 < r.wire_per_payload < 1.02         # the target is <= 1.03 (bench/bench_link.py)
    assert r.retries == 0 and r.resumed_from == 0


def test_stop_and_resume_with_a_new_master() -> None:
    dev = FakeSTM32(Clock(), {0: OLD})
    port = FakePort(dev)
    half = Master(port).update(NEW, stop_at=64 * 1024)
    assert half.outcome == "stopped"
    r = Master(port).update(NEW)
    assert r.resumed_from == 64 * 1024 and r.outcome == "confirmed"


def test_refusal_is_a_link_error_with_the_status() -> None:
    dev = FakeSTM32(Clock(), {0: OLD})
    with pytest.raises(LinkError, match=r"^Failed to BEGIN: STM32 refused BEGIN: ERR_TARGET_RUNNING") as e:
        Master(FakePort(dev)).update(make_image(0, (2, 0, 0), 9000))
    assert e.value.status_name == "ERR_TARGET_RUNNING"


def test_reverted_image() -> None:
    dev = FakeSTM32(Clock(), {0: OLD})
    dev.faults.app_confirms[1] = False
    r = Master(FakePort(dev)).update(NEW)
    assert (r.outcome, r.reason) == ("reverted", "REVERTED_NO_CONFIRM")
    assert r.info_after is not None and r.info_after["running_slot"] == 0
