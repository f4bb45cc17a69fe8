"""The virtual ESP32 wired to the STM32 twin running the real firmware: the bridge's own link code
(esp32_mpy/fotalink.py + hw.py) in MicroPython reaches SPI2 of the twin through machine.SPI, and
NRST through machine.Pin."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from esp32_twin import VirtualEsp32
from esp32_twin.twin_peer import TwinPeer
from fota_testkit.mpremote import Mp
from stm32_fota.build import BuildResult
from stm32_fota.project import current
from stm32_twin import Stm32Twin

BRIDGE_DIR = current().bridge_dir

LINK_MODULES = ("fota_const", "fotalink", "hw", "config")


@pytest.fixture
def twin_esp(node_runtime: None, fw_build: BuildResult, tmp_path: Path) -> Iterator[VirtualEsp32]:
    board = Stm32Twin(tmp_path / "stm32-flash.bin")
    board.load_build(fw_build.build_dir)
    board.power_on()
    board.run(ms=300)                   # bootloader -> application in slot A, READY high
    fs = tmp_path / "fs"
    fs.mkdir()
    for name in LINK_MODULES:
        shutil.copy(BRIDGE_DIR / f"{name}.py", fs / f"{name}.py")
    esp = VirtualEsp32(TwinPeer(board), board=board, fs_dir=fs, log_path=tmp_path / "node.log")
    esp.start()
    try:
        yield esp
    finally:
        esp.stop()
        board.close()


def test_info_exchange_over_spi_reaches_the_twin(twin_esp: VirtualEsp32) -> None:
    code = ("import config, hw, fotalink\n"
            "link = fotalink.Link(hw.Port(config.load()))\n"
            "i = link.info()\n"
            "print(i['proto_version'], i['running_slot'], i['run_major'], i['run_minor'], i['run_patch'],\n"
            "      i['a_state'], i['max_chunk'], i['run_counter'], i['security_floor'])\n")
    out = Mp(twin_esp.port)("exec", code).stdout.split()
    # protocol 2; slot A runs v1.0.0, valid, 4 KB chunks; its counter 1, the first boot's floor 1
    assert out == ["2", "0", "1", "0", "0", "1", "4096", "1", "1"]
    assert isinstance(twin_esp.peer, TwinPeer) and twin_esp.peer.faults == []


def test_nrst_pin_resets_the_twin(twin_esp: VirtualEsp32) -> None:
    board = twin_esp.board
    with twin_esp.lock:
        resets_before = sum(1 for e in board.events if e.kind == "reset")
    code = "import config, hw\nhw.Port(config.load()).reset_target()\nprint('pulsed')\n"
    assert Mp(twin_esp.port)("exec", code).stdout == "pulsed\n"
    with twin_esp.lock:
        causes = [e.data["cause"] for e in board.events if e.kind == "reset"][resets_before:]
    assert "pin" in causes                                     # NRST low, then released
