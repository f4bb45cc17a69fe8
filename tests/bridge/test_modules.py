"""The bridge's hardware module (over a fake `machine`), config.json handling, and main.py's loop."""

from __future__ import annotations

import importlib
import json
import sys
import time
import types
from pathlib import Path
from typing import ClassVar

import pytest
from fotalink import BridgeError


class FakePin:
    IN, OUT, OPEN_DRAIN, PULL_DOWN = 1, 3, 7, 2
    log: ClassVar[list[tuple[int, int]]] = []

    def __init__(self, n: int, mode: int = -1, pull: int = -1, *, value: int | None = None) -> None:
        self.n, self.mode, self.pull, self.v = n, mode, pull, value if value is not None else 0

    def __call__(self, v: int | None = None) -> int | None:
        if v is None:
            return self.v
        self.v = v
        FakePin.log.append((self.n, v))
        return None

    def value(self) -> int:
        return self.v


class FakeSPI:
    MSB = 0

    def __init__(self, spi_id: int, **kw: object) -> None:
        self.id, self.kw = spi_id, kw
        self.cs_during: list[int] = []

    def write_readinto(self, tx: memoryview, rx: memoryview) -> None:
        self.cs_during.append(FakePin.log[-1][1])
        rx[:] = bytes(b ^ 0xFF for b in tx)


@pytest.fixture
def hw(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    machine = types.SimpleNamespace(Pin=FakePin, SPI=FakeSPI)
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setattr(time, "ticks_ms", lambda: 0, raising=False)
    monkeypatch.setattr(time, "sleep_ms", lambda n: None, raising=False)
    sys.modules.pop("hw", None)
    return importlib.import_module("hw")


def test_hw_port_wires_the_link_as_documented(hw: types.ModuleType) -> None:
    import config
    cfg = config.defaults()
    port = hw.Port(cfg)
    kw = port.spi.kw
    assert port.spi.id == 2 and kw["baudrate"] == cfg["spi_baud"]
    assert (kw["polarity"], kw["phase"], kw["bits"], kw["firstbit"]) == (0, 0, 8, FakeSPI.MSB)
    assert (kw["sck"].n, kw["mosi"].n, kw["miso"].n) == (18, 23, 19)
    assert (port.cs.n, port.cs.mode, port.cs.v) == (5, FakePin.OUT, 1)
    assert (port.rdy.n, port.rdy.mode, port.rdy.pull) == (27, FakePin.IN, FakePin.PULL_DOWN)
    assert (port.nrst.n, port.nrst.mode, port.nrst.v) == (4, FakePin.OPEN_DRAIN, 1)
    FakePin.log.clear()
    rx = bytearray(4)
    port.transfer(memoryview(b"\x00\x01\x02\x03"), memoryview(rx))
    assert rx == b"\xff\xfe\xfd\xfc"
    assert port.spi.cs_during == [0] and FakePin.log == [(5, 0), (5, 1)]   # CS low only around it
    FakePin.log.clear()
    port.reset_target()
    assert FakePin.log == [(4, 0), (4, 1)]
    assert not port.ready()


def test_config_defaults_file_and_errors(tmp_path: Path) -> None:
    import config
    assert config.load(str(tmp_path / "missing.json")) == config.defaults()
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"server": "http://10.0.0.2:8080", "spi_baud": 8000000}))
    cfg = config.load(str(p))
    assert cfg["server"] == "http://10.0.0.2:8080" and cfg["spi_baud"] == 8000000
    assert cfg["pin_ready"] == 27
    p.write_text("{not json")
    with pytest.raises(BridgeError, match=r"Failed to read .*config\.json: not valid JSON"):
        config.load(str(p))


def test_main_keeps_polling_after_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    import updater
    calls: list[str] = []

    def update() -> str:
        calls.append("update")
        if len(calls) == 1:
            raise BridgeError("Failed to join Wi-Fi lab: not connected after 3 attempts")
        if len(calls) == 2:
            raise ValueError("boom")
        return "none"

    class Stop(BaseException):
        pass

    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 3:
            raise Stop

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"poll_interval_s": 7, "start_delay_s": 0,
                                                      "wdt_timeout_s": 0}))
    monkeypatch.setattr(updater, "update", update)
    monkeypatch.setattr(time, "sleep", sleep)
    with pytest.raises(Stop):
        updater.run_forever()
    out = capsys.readouterr().out
    assert "fota: error Failed to join Wi-Fi lab" in out
    assert "fota: error unexpected ValueError('boom')" in out
    assert calls == ["update"] * 3 and sleeps == [7, 7, 7]


def test_main_py_runs_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[bool] = []
    monkeypatch.setitem(sys.modules, "updater", types.SimpleNamespace(run_forever=lambda: ran.append(True)))
    sys.modules.pop("main", None)
    importlib.import_module("main")
    assert ran == [True]
