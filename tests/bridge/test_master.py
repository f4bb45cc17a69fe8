"""The reference master (fota_lab.master): the bridge's fotalink under CPython, loaded privately
(fota_lab.bridge_modules), on the fake STM32 and on the STM32 twin running the real firmware."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fota_formats.errors import FotaError
from fota_formats.spec import IMAGE
from fota_lab import master
from fota_lab.bridge_modules import BridgeModules, for_folder
from fota_lab.master import LinkError, Master
from fota_testkit.bridge import Device, FakeDevice
from fota_testkit.fake_stm32 import SECTOR_ERASE_MS, WORD_PROGRAM_MS
from stm32_fota.project import current

IC = IMAGE.constants
SIZE = 64 * 1024


def test_master_runs_the_bridges_own_code_under_private_names() -> None:
    code = master.bridge()
    assert code is for_folder(current().bridge_dir)                 # loaded once per folder
    assert code.fotalink.__file__ == str(current().bridge_dir / "fotalink.py")
    assert code.fotalink.__name__ == "fota_lab._bridge.fotalink"
    assert master.BridgeError is code.BridgeError is code.fotalink.BridgeError
    assert master.fotalink is code.fotalink


def test_loading_the_bridge_takes_no_top_level_module_name() -> None:
    # In a fresh interpreter: tests/bridge itself imports the bridge by its top-level names.
    probe = ("import sys\n"
             "from fota_lab import master\n"
             "master.fotalink.Link\n"
             "print(sorted(n for n in sys.modules if n in ('fotalink', 'fota_const') or '_bridge' in n))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert out.strip() == "[]"


def test_a_top_level_fota_const_stays_what_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = type(sys)("fota_const")
    monkeypatch.setitem(sys.modules, "fota_const", mine)
    code = BridgeModules(current().bridge_dir)
    assert code.fotalink.FRAME_MARKER == 0x5AA5
    assert sys.modules["fota_const"] is mine


def test_a_missing_bridge_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FotaError, match=r"^Failed to load the bridge module fota_const: .*nothing"
                                        r"/fota_const.py does not exist$"):
        BridgeModules(tmp_path / "nothing").fotalink  # noqa: B018


def test_update_reports_outcome_timings_and_wire_bytes(device: Device) -> None:
    new = device.image(1, (1, 2, 0), SIZE, build=9)
    m = Master(device.port())
    r = m.update(new)
    assert r.outcome == "confirmed" and r.target_slot == 1 and r.version == (1, 2, 0, 9)
    assert r.info_after is not None
    assert (r.info_after["running_slot"], r.info_after["run_minor"], r.info_after["run_build"]) == (1, 2, 9)
    assert (r.info_after["meta_state"], r.info_after["last_result"]) == \
        (IC["META_STATE_CONFIRMED"], IC["RESULT_CONFIRMED"])
    assert device.slot_bytes(1, len(new)) == new
    # Slot B was blank: BEGIN erases nothing. Programming takes 16 us per word (DS8626 typical,
    # what both devices model): the write phase is bounded below by it, above by it and the link.
    assert r.phases_ms["begin"] < 50
    program_ms = len(new) / 4 * WORD_PROGRAM_MS
    programmed = r.phases_ms["write"] + r.phases_ms["verify"]   # the last chunk programs during VERIFY
    assert program_ms <= programmed <= program_ms * 1.1 + 50
    assert 1.0 < r.wire_per_payload < 1.03          # INFO, BEGIN, VERIFY, ACTIVATE included
    assert r.resumed_from == 0
    # Back to Slot A, which holds 1.0.0: one 128 KB sector to erase first.
    back = m.update(device.image(0, (1, 3, 0), SIZE, build=1))
    assert back.outcome == "confirmed" and back.info_after is not None
    assert (back.info_after["running_slot"], back.info_after["run_minor"]) == (0, 3)
    assert SECTOR_ERASE_MS <= back.phases_ms["begin"] <= SECTOR_ERASE_MS + 50


def test_stop_and_resume_with_a_new_master(device: Device) -> None:
    new = device.image(1, (1, 2, 0), SIZE, build=9)
    half = Master(device.port()).update(new, stop_at=32 * 1024)
    assert half.outcome == "stopped" and half.info_after is None
    r = Master(device.port()).update(new)
    assert r.resumed_from == 32 * 1024 and r.outcome == "confirmed"
    assert device.slot_bytes(1, len(new)) == new


def test_refusal_is_a_link_error_with_the_status(device: Device) -> None:
    img = device.image(0, (2, 0, 0), 9000)
    before = device.flash()
    with pytest.raises(LinkError, match=r"^Failed to BEGIN: STM32 refused BEGIN: ERR_TARGET_RUNNING") as e:
        Master(device.port()).update(img)
    assert e.value.status_name == "ERR_TARGET_RUNNING"
    assert device.flash() == before


def test_image_that_never_confirms_is_reverted() -> None:
    # Fake only, to keep the twin's three trial boots (36 s of virtual time) to one scenario: the
    # bridge cycle's (test_updater.py), which runs the firmware's noconfirm variant on the twin.
    device = FakeDevice()
    new = device.image(1, (1, 2, 0), 16 * 1024, confirms=False)
    r = Master(device.port()).update(new, confirm_timeout_ms=120_000)
    assert (r.outcome, r.reason) == ("reverted", "REVERTED_WATCHDOG")
    assert r.info_after is not None
    assert (r.info_after["running_slot"], r.info_after["run_minor"]) == (0, 0)
    # ACTIVATE (3 attempts), one record per trial boot, then the revert: seq 1 -> 6.
    assert (r.info_after["meta_active"], r.info_after["meta_seq"], r.info_after["meta_attempts"]) == (0, 6, 0)
