"""Every bridge module (esp32_mpy/) imports under the real MicroPython runtime of the virtual
ESP32, as source and as the .mpy files that deploy-esp32 copies, and under CPython with the
stand-ins: one test per runtime, same module list."""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from esp32_twin import FakePeer, VirtualEsp32
from esp32_twin.standins import cpython_standins
from fota_testkit.mpremote import Mp
from stm32_fota.mpy import compile_bridge
from stm32_fota.project import current

BRIDGE_DIR = current().bridge_dir

# main.py is the boot entry: importing it starts the endless poll loop, so it is checked by
# running it at boot (test_main_py_runs_at_boot_and_ctrl_c_stops_it) instead.
MODULES = sorted(p.stem for p in BRIDGE_DIR.glob("*.py") if p.name != "main.py")


def test_module_list_is_the_bridge() -> None:
    assert {"config", "fota_const", "fotalink", "hw", "net", "updater"} <= set(MODULES)


def _import_all_code() -> str:
    names = ", ".join(repr(m) for m in MODULES)
    return (f"import sys\nfor m in ({names},):\n __import__(m)\n"
            "print(sorted(k for k in sys.modules if k in (" + names + ",)))\n"
            "print(sys.modules['fotalink'].__file__)\n")


def test_every_module_imports_under_micropython_as_source(mp: Mp, esp: VirtualEsp32) -> None:
    for name in MODULES:
        shutil.copy(BRIDGE_DIR / f"{name}.py", esp.fs_dir / f"{name}.py")
    out = mp("exec", _import_all_code()).stdout.splitlines()
    assert out == [repr(MODULES), "fotalink.py"]


def test_every_module_imports_under_micropython_as_mpy(mp: Mp, esp: VirtualEsp32, tmp_path: Path) -> None:
    build = compile_bridge(tmp_path / "mpy")
    for f in build.files:
        if f.suffix == ".mpy":
            shutil.copy(f, esp.fs_dir / f.name)
    out = mp("exec", _import_all_code()).stdout.splitlines()
    assert out == [repr(MODULES), "fotalink.mpy"]
    # The hardware module drives the stand-ins: one INFO-sized transaction reaches the peer.
    code = ("import config, hw\np = hw.Port(config.load())\nrx = bytearray(160)\n"
            "p.transfer(bytes(160), rx)\nprint(p.ready(), len(rx))\n")
    assert mp("exec", code).stdout == "True 160\n"


@pytest.fixture
def bridge_on_path() -> Iterator[None]:
    saved = {m: sys.modules.pop(m) for m in MODULES if m in sys.modules}
    sys.path.insert(0, str(BRIDGE_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(BRIDGE_DIR))
        for m in MODULES:
            sys.modules.pop(m, None)
        sys.modules.update(saved)


def test_every_module_imports_under_cpython_with_standins(bridge_on_path: None) -> None:
    peer = FakePeer(respond=lambda tx: bytes(reversed(tx)))
    with cpython_standins(peer):
        modules = {name: importlib.import_module(name) for name in MODULES}
        assert sorted(modules) == MODULES
        assert modules["fotalink"].__file__ == str(BRIDGE_DIR / "fotalink.py")
        port = modules["hw"].Port(modules["config"].defaults())
        rx = bytearray(4)
        port.transfer(b"\x01\x02\x03\x04", rx)
        assert rx == b"\x04\x03\x02\x01"                 # through machine.SPI to the peer
        assert port.ready() is True
    assert "machine" not in sys.modules                  # the stand-ins are gone again


def test_main_py_runs_at_boot_and_ctrl_c_stops_it(mp: Mp, esp: VirtualEsp32) -> None:
    # The fixture returns once MicroPython runs, before the first boot has looked for main.py: reach
    # the REPL first, so that the main.py copied below runs at the reset and not at that first boot.
    mp("exec", "pass")
    for name in MODULES:
        shutil.copy(BRIDGE_DIR / f"{name}.py", esp.fs_dir / f"{name}.py")
    shutil.copy(BRIDGE_DIR / "main.py", esp.fs_dir / "main.py")
    (esp.fs_dir / "config.json").write_text('{"start_delay_s": 0}')   # the first cycle at once
    mark = len(esp.transcript())
    mp("reset")                     # boots into main.py: one update cycle, then a long sleep

    def after_reset() -> str:
        new = esp.transcript()[mark:]
        return new.partition("rst:0xc (SW_CPU_RESET)")[2]

    deadline = time.monotonic() + 20
    while "fota: " not in after_reset() and time.monotonic() < deadline:
        time.sleep(0.1)
    # No server configured: the cycle fails with a status line and main.py sleeps until the next.
    assert "fota: result failed" in after_reset()
    out = mp("resume", "exec", "import sys\nprint('updater' in sys.modules)").stdout
    assert out == "True\n", esp.transcript()
    assert "KeyboardInterrupt" in after_reset()          # mpremote's Ctrl-C ended the sleep
