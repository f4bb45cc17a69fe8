"""The reference master and the bridge's update cycle on the STM32 twin, with the real bootloader
and application binaries (the session's firmware build). Newer versions are made by re-stamping
the built slot images (version field + trailer), as a release of the same code would be."""

from __future__ import annotations

import hashlib

import net
import pytest
from fake_server import FakeServer
from fota_formats.spec import IMAGE, LAYOUT
from fota_lab.master import Master, TwinPort
from fotalink import Link
from stm32_fota.build import BuildResult
from twin_helpers import boot_twin, restamp
from updater import Updater

pytest.importorskip("stm32_twin.board", reason="the STM32 twin package is not installed")
from stm32_twin.board import DEFAULT_UID

SLOT_B_BASE = LAYOUT.region("slot_b").base


@pytest.fixture
def images(fw_build: BuildResult) -> dict[str, bytes]:
    d = fw_build.build_dir
    return {"b110": restamp((d / "slot-b.bin").read_bytes(), (1, 1, 0)),
            "a120": restamp((d / "slot-a.bin").read_bytes(), (1, 2, 0))}


def test_master_updates_a_to_b_then_b_to_a(fw_build: BuildResult, images: dict[str, bytes]) -> None:
    board = boot_twin(fw_build.build_dir)
    m = Master(TwinPort(board))
    before = m.info()
    assert before["running_slot"] == 0 and before["b_state"] == IMAGE.constants["SLOT_STATE_EMPTY"]
    r = m.update(images["b110"])
    assert r.outcome == "confirmed", r
    assert r.info_after is not None
    assert (r.info_after["running_slot"], r.info_after["run_minor"]) == (1, 1)
    assert r.info_after["last_result"] == IMAGE.constants["RESULT_CONFIRMED"]
    assert board.flash_bytes(SLOT_B_BASE, len(images["b110"])) == images["b110"]
    back = m.update(images["a120"])
    assert back.outcome == "confirmed"
    assert back.info_after is not None
    assert (back.info_after["running_slot"], back.info_after["run_minor"]) == (0, 2)


class Flipper(TwinPort):
    """Bit flips on MOSI in the 2nd and 3rd WRITE-sized transactions."""

    def __init__(self, board: object) -> None:
        super().__init__(board)
        self.n = 0

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        data = bytearray(tx)
        if len(data) > 1000:
            self.n += 1
            if self.n in (2, 3):
                data[700] ^= 0x04
        rx[:] = self.board.spi_transfer(bytes(data), self.hz)


def test_bit_flips_on_the_twin_are_retried_and_the_image_is_intact(fw_build: BuildResult,
                                                                   images: dict[str, bytes]) -> None:
    board = boot_twin(fw_build.build_dir)
    big = images["b110"]
    r = Master(Flipper(board)).update(big)
    assert r.outcome == "confirmed" and r.retries >= 1
    assert hashlib.sha256(board.flash_bytes(SLOT_B_BASE, len(big))).digest() == hashlib.sha256(big).digest()


def test_bridge_cycle_on_the_twin(fw_build: BuildResult, images: dict[str, bytes]) -> None:
    board = boot_twin(fw_build.build_dir)
    lines: list[str] = []
    with FakeServer(images["b110"], "1.1.0", "B") as srv:
        u = Updater(Link(TwinPort(board)), net.Http(srv.url, "", 5), {"confirm_timeout_s": 30},
                    log=lines.append)
        assert u.cycle() == "confirmed", lines
    assert lines[-1].startswith("fota: result confirmed 1.1.0 slot B in ")
    assert "fota: step stm32 slot A version 1.0.0 last NONE" in lines
    assert srv.reports[-1]["outcome"] == "confirmed" and srv.reports[-1]["running_version"] == "1.1.0"
    assert srv.checkins[0]["device_id"] == DEFAULT_UID.hex()      # the twin's unique ID


def test_refusal_on_the_twin_leaves_everything_as_it_was(fw_build: BuildResult) -> None:
    board = boot_twin(fw_build.build_dir)
    flash = board.flash_snapshot()
    lines: list[str] = []
    old = restamp((fw_build.build_dir / "slot-b.bin").read_bytes(), (0, 9, 0))
    with FakeServer(old, "0.9.0", "B") as srv:
        u = Updater(Link(TwinPort(board)), net.Http(srv.url, "", 5), {}, log=lines.append)
        assert u.cycle() == "failed"
    assert lines[-1].endswith(": STM32 refused BEGIN: ERR_VERSION")
    assert board.flash_snapshot() == flash


class PowerCut(TwinPort):
    """Power-cycles the STM32 just before the n-th WRITE-sized transaction (the frame is lost)."""

    def __init__(self, board: object, at: int) -> None:
        super().__init__(board)
        self.n = 0
        self.at = at

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        if len(tx) > 1000:
            self.n += 1
            if self.n == self.at:
                self.board.power_cycle()
        super().transfer(tx, rx)


def test_power_cut_mid_transfer_on_the_twin(fw_build: BuildResult) -> None:
    img = restamp((fw_build.build_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=64 * 1024)
    board = boot_twin(fw_build.build_dir)
    lines: list[str] = []
    with FakeServer(img, "1.1.0", "B") as srv:
        u = Updater(Link(PowerCut(board, at=8)), net.Http(srv.url, "", 5), {}, log=lines.append)
        assert u.cycle() == "confirmed", lines
    assert any(x.startswith("fota: step restart no update session any more") for x in lines), lines
    assert [x for x in lines if x == "fota: step begin"] == ["fota: step begin"] * 2
    assert board.flash_bytes(SLOT_B_BASE, len(img)) == img


def test_image_that_never_confirms_is_reverted_on_the_twin(fw_build_variants: BuildResult) -> None:
    d = fw_build_variants.build_dir
    img = restamp((d / "slot-b-noconfirm.bin").read_bytes(), (1, 1, 0))
    board = boot_twin(d)
    lines: list[str] = []
    with FakeServer(img, "1.1.0", "B") as srv:
        u = Updater(Link(TwinPort(board)), net.Http(srv.url, "", 5), {"confirm_timeout_s": 300},
                    log=lines.append)
        assert u.cycle() == "reverted", lines
    assert lines[-1].startswith("fota: result reverted 1.0.0 slot A in ")
    assert lines[-1].endswith(": REVERTED_NO_CONFIRM") or lines[-1].endswith(": REVERTED_WATCHDOG")
    assert srv.reports[-1]["outcome"] == "reverted"


def test_bridge_reset_mid_transfer_resumes_on_the_twin(fw_build: BuildResult) -> None:
    img = restamp((fw_build.build_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=64 * 1024)
    board = boot_twin(fw_build.build_dir)

    class BridgeReset(BaseException):
        pass

    def dying_log(line: str) -> None:
        if line.startswith("fota: progress") and int(line.split()[2].rstrip("%")) >= 50:
            raise BridgeReset

    lines: list[str] = []
    with FakeServer(img, "1.1.0", "B") as srv:
        first = Updater(Link(TwinPort(board)), net.Http(srv.url, "", 5), {}, log=dying_log)
        with pytest.raises(BridgeReset):
            first.cycle()
        second = Updater(Link(TwinPort(board)), net.Http(srv.url, "", 5), {}, log=lines.append)
        assert second.cycle() == "confirmed", lines
    resumed = [int(x.split()[3]) for x in lines if x.startswith("fota: step resume ")]
    assert len(resumed) == 1 and resumed[0] >= len(img) // 2
    assert srv.ranges[-1] == resumed[0]
    assert board.flash_bytes(SLOT_B_BASE, len(img)) == img
