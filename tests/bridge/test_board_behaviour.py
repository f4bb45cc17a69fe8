"""What a real ESP32 does that CPython does not, for the bridge under CPython with the virtual
ESP32's stand-ins: stream reads that fill their buffer (a keep-alive server), Ctrl-C in the middle
of a cycle (mpremote), the NRST pad's reset pull-down, bad pins in config.json, Wi-Fi status codes,
a missing Wi-Fi configuration, and the retry backoff of main.py."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import config
import net
import pytest
import updater
from esp32_twin import FakePeer
from esp32_twin.netstack import WifiConfig
from esp32_twin.standins import cpython_standins, standin
from fota_lab.fakes import FakeServer
from fota_lab.images import make_image
from fota_testkit.fake_stm32 import Clock, FakePort, FakeSTM32
from fotalink import BridgeError, Link

# hw.py imports `machine` when it is imported: only inside cpython_standins, afresh each time
# (its Pin and SPI are the stand-ins of that context).


def _hw() -> types.ModuleType:
    sys.modules.pop("hw", None)
    import hw
    return hw


@pytest.fixture(autouse=True)
def _fresh_hw() -> Iterator[None]:
    yield
    sys.modules.pop("hw", None)

OLD = make_image(0, (1, 0, 0), 40_000)
NEW = make_image(1, (1, 1, 0), 150_000, build=3)
RESULT = re.compile(r"^fota: result (\w+) (\S+) slot (\S) in ([0-9.]+) s(?:: (.*))?$")


# -- stream reads: an answer under 1 KB from a server that keeps the connection open -------------

class KeepAliveServer:
    """Answers one request with a short JSON answer (Content-Length) and keeps the connection
    open for `hold_s`, as an HTTP/1.1 server or proxy may although the client asked to close."""

    def __init__(self, hold_s: float = 5.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hold_s = hold_s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            body = b'{"update": false}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            time.sleep(self.hold_s)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def standins() -> Iterator[object]:
    with cpython_standins(FakePeer()) as services:
        services.net.set_active(True)
        services.net.connect("lab", "pw")
        yield services


def test_an_answer_under_1kb_returns_while_the_server_keeps_the_connection(
        standins: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ESP32's socket (stand-in): readinto on a blocking socket fills the buffer or waits for
    # the end of the stream; the head must be read as it arrives.
    monkeypatch.setitem(sys.modules, "socket", standin("socket"))
    srv = KeepAliveServer(hold_s=5.0)
    try:
        t0 = time.monotonic()
        reply = net.Http(f"http://127.0.0.1:{srv.port}", timeout_s=3).post_json("/api/v1/checkin", {})
        elapsed = time.monotonic() - t0
    finally:
        srv.close()
    assert reply == {"update": False}
    assert elapsed < 1.5, f"the answer took {elapsed:.1f} s: the head read waited for the server"


# -- Ctrl-C in the middle of a cycle --------------------------------------------------------------

class Run:
    def __init__(self, dev: FakeSTM32, url: str, tmp_path: Path, stop_at: str | None) -> None:
        self.lines: list[str] = []
        self.stop_at = stop_at
        cfg = {"http_retries": 3, "confirm_timeout_s": 30, "reset": "command",
               "pending_file": str(tmp_path / "pending.json")}
        self.updater = updater.Updater(Link(FakePort(dev)), net.Http(url, "", 5), cfg, log=self.log)

    def log(self, line: str) -> None:
        self.lines.append(line)
        if self.stop_at is not None and line.startswith(self.stop_at):
            self.stop_at = None
            raise KeyboardInterrupt

    def result(self) -> tuple[str, ...]:
        m = RESULT.match(self.lines[-1])
        assert m, self.lines[-1]
        return m.groups()


@pytest.fixture
def dev() -> FakeSTM32:
    return FakeSTM32(Clock(), {0: OLD}, running=0)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(NEW, "1.1.0", "B") as s:
        yield s


def test_ctrl_c_mid_download_ends_with_a_result_line_and_a_failed_report(
        dev: FakeSTM32, server: FakeServer, tmp_path: Path) -> None:
    run = Run(dev, server.url, tmp_path, "fota: progress 30%")
    with pytest.raises(KeyboardInterrupt):        # still stops main.py / the mpremote exec
        run.updater.cycle()
    assert run.result()[0] == "failed" and run.result()[4] == "interrupted (KeyboardInterrupt)"
    final = server.reports[-1]
    assert (final["stage"], final["outcome"], final["update_id"]) == ("result", "failed", 17)
    assert final["reason"] == "interrupted (KeyboardInterrupt)"
    assert not (tmp_path / "pending.json").exists()


def test_ctrl_c_after_activate_leaves_the_outcome_to_the_next_cycle(
        dev: FakeSTM32, server: FakeServer, tmp_path: Path) -> None:
    run = Run(dev, server.url, tmp_path, "fota: step boot")
    with pytest.raises(KeyboardInterrupt):
        run.updater.cycle()
    assert run.result()[0] == "interrupted"
    # No "failed" for an update the STM32 may still confirm: the server hears nothing yet.
    assert [r for r in server.reports if r["stage"] == "result"] == []
    assert json.loads((tmp_path / "pending.json").read_text())["update_id"] == 17
    dev.clock.now += 5000                          # the new image confirms itself meanwhile
    server.offer = None                            # it runs 1.1.0: nothing more to offer
    again = Run(dev, server.url, tmp_path, None)
    assert again.updater.cycle() == "none"
    final = server.reports[-1]
    assert (final["stage"], final["outcome"], final["update_id"]) == ("result", "confirmed", 17)
    assert final["running_slot"] == "B" and final["running_version"] == "1.1.0"
    assert "fota: step reported update 17 confirmed" in again.lines
    assert not (tmp_path / "pending.json").exists()


# -- hw.Port on the ESP32's pins --------------------------------------------------------------------

def test_nrst_is_released_when_the_pulse_is_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    with cpython_standins(FakePeer()) as services:
        def sleep_ms(_ms: int) -> None:
            raise KeyboardInterrupt

        hw = _hw()
        monkeypatch.setattr(hw, "time", types.SimpleNamespace(sleep_ms=sleep_ms))
        port = hw.Port(config.defaults())
        with pytest.raises(KeyboardInterrupt):
            port.reset_target()
        assert services.pins[4].level == 1         # released: the STM32 runs again


def test_nrst_pad_pull_down_is_cleared() -> None:
    # GPIO 4 comes out of reset with its pull-down on; on a board without an external pull-up
    # on NRST that holds the STM32 at ~1.6 V until the bridge clears it (pull=None).
    with cpython_standins(FakePeer()) as services:
        services.nrst_pullup = False
        services.handle("boot", ["power"], b"", lambda: False)
        assert services.nrst_undefined              # before the bridge runs: NRST half-way
        _hw().Port(config.defaults())
        assert services.pins[4].pull == 0
        assert not services.nrst_undefined


def test_a_bad_pin_in_config_json_prints_a_result_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"server": "http://127.0.0.1:1", "pin_cs": 99,
                                                      "wdt_timeout_s": 0}))
    with cpython_standins(FakePeer()):
        _hw()
        assert updater.update() == "failed"
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("fota: result failed ? slot ? in 0.0 s: bad hardware settings in config.json")
    assert "invalid pin" in out[-1]


# -- Wi-Fi ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ssid", "password", "reason"), [
    ("lab", "wrong", "Failed to join Wi-Fi lab: wrong password (wifi_password in config.json)"),
    ("elsewhere", "pw", "Failed to join Wi-Fi elsewhere: no access point named elsewhere in range"),
])
def test_wrong_password_and_missing_access_point_are_told_apart(ssid: str, password: str,
                                                                 reason: str) -> None:
    with cpython_standins(FakePeer(), wifi=WifiConfig(ssid="lab", password="pw")), \
            pytest.raises(BridgeError) as e:
        net.wifi_connect(ssid, password, retries=2, timeout_ms=50)
    assert e.value.reason == reason


def test_no_wifi_settings_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"server": "http://127.0.0.1:1", "wdt_timeout_s": 0}))
    with cpython_standins(FakePeer()):
        clock = types.SimpleNamespace(ticks_ms=lambda: 0, sleep_ms=lambda _n: None)
        monkeypatch.setattr(_hw(), "time", clock)
        assert updater.update() == "failed"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "no Wi-Fi configured: wifi_ssid is empty in config.json" in last


# -- main.py's loop -----------------------------------------------------------------------------------

def test_failed_cycles_are_retried_sooner_with_a_backoff() -> None:
    cfg = {**config.defaults(), "poll_interval_s": 3600, "retry_min_s": 60}
    assert [updater.retry_delay_s(cfg, n) for n in range(8)] == [3600, 60, 120, 240, 480, 960, 1920, 3600]


def test_the_watchdog_is_fed_at_every_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(updater, "_wdt", None)
    (tmp_path / "config.json").write_text(json.dumps({"server": "http://127.0.0.1:1", "pin_cs": 99,
                                                      "wdt_timeout_s": 120}))
    with cpython_standins(FakePeer()) as services:
        _hw()
        updater.update()
        assert services.wdt_timeout_ms == 120_000
        services.now_ms += 100_000
        updater.update()                            # one line, one feed
        assert services.wdt_deadline_ms == services.now_ms + 120_000
        services.now_ms += 121_000
        assert services.handle("ticks", [], b"", lambda: False).reboot == "hard"


def test_main_waits_after_boot_then_backs_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"poll_interval_s": 600, "retry_min_s": 60,
                                                      "start_delay_s": 30, "wdt_timeout_s": 0}))
    outcomes = iter(["failed", "failed", "none"])
    monkeypatch.setattr(updater, "update", lambda: next(outcomes))
    slept: list[float] = []
    updater.run_forever(sleep_s=slept.append, cycles=3)
    # 30 s after boot; after two failures 60 then 120 s; after a good cycle the poll interval
    assert slept == [10, 10, 10] + [10] * 6 + [10] * 12 + [10] * 60


# -- a damaged image header -------------------------------------------------------------------------

@pytest.mark.parametrize(("offset", "xor", "detail"), [
    (0, 0x01, "not an MCUboot header (magic 0x96f3b83c, header size 512)"),   # ih_magic
    (8, 0x01, "not an MCUboot header (magic 0x96f3b83d, header size 513)"),   # ih_hdr_size
    (21, 0x02, "version 1.3.0, not 1.1.0"),                                    # ih_ver_minor
])
def test_a_byte_flipped_in_the_image_header_is_named(dev: FakeSTM32, tmp_path: Path, offset: int,
                                                     xor: int, detail: str) -> None:
    damaged = bytearray(NEW)
    damaged[offset] ^= xor
    with FakeServer(bytes(damaged), "1.1.0", "B") as srv:
        run = Run(dev, srv.url, tmp_path, None)
        assert run.updater.cycle() == "failed"
    reason = run.result()[4]
    assert reason == ("Failed to check the image: its header does not match the server's "
                      f"offer ({detail}): a damaged file, or not the one released; nothing "
                      "was written")
    assert dev.erases == 0
