"""The update cycle (esp32_mpy/updater.py + net.py) under CPython: fake STM32 on a virtual clock,
a local HTTP server for the device API, fakes for `network`. Each failure mode (no Wi-Fi, server
errors, refusals, power cuts, resets, link errors) ends in one clear `fota: result` line, with the
STM32 still running its old image."""

from __future__ import annotations

import re
import socket
import sys
import types

import net
import pytest
from fake_server import FakeServer
from fake_stm32 import CMD, IC, SES, Clock, FakePort, FakeSTM32
from fotalink import Link
from images import make_image
from updater import Updater

OLD = make_image(0, (1, 0, 0), 40_000)
NEW = make_image(1, (1, 1, 0), 150_000, build=3)
RESULT = re.compile(r"^fota: result (\w+) (\S+) slot (\S) in ([0-9.]+) s(?:: (.*))?$")


class Run:
    """One bridge (link + HTTP + updater) and its console lines."""

    def __init__(self, dev: FakeSTM32, server_url: str, **cfg: object) -> None:
        self.lines: list[str] = []
        self.dev = dev
        conf = {"http_retries": 3, "confirm_timeout_s": 30, "reset": "command", **cfg}
        self.link = Link(FakePort(dev))
        self.updater = Updater(self.link, net.Http(server_url, str(conf.get("token", "")), 5), conf,
                               log=self.lines.append, connect=conf.get("connect"))  # type: ignore[arg-type]

    def cycle(self) -> str:
        return self.updater.cycle()

    def result(self) -> tuple[str, ...]:
        m = RESULT.match(self.lines[-1])
        assert m, self.lines[-1]
        assert sum(1 for x in self.lines if x.startswith("fota: result")) == 1
        return m.groups()

    def steps(self) -> list[str]:
        return [x.split()[2] for x in self.lines if x.startswith("fota: step")]


@pytest.fixture
def dev() -> FakeSTM32:
    return FakeSTM32(Clock(), {0: OLD}, running=0)


@pytest.fixture
def server():
    with FakeServer(NEW, "1.1.0", "B") as s:
        yield s


def test_full_cycle_confirms_and_reports(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url, token="tok")
    assert run.cycle() == "confirmed"
    outcome, version, slot, secs, reason = run.result()
    assert (outcome, version, slot, reason) == ("confirmed", "1.1.0", "B", None)
    assert float(secs) > 2.0                       # erase + write + self-test, virtual time
    assert run.steps()[:4] == ["info", "stm32", "checkin", "download"]
    for s in ("begin", "verify", "activate", "reset", "boot", "confirm"):
        assert s in run.steps()
    assert "fota: progress 100% 150000/150000" in run.lines
    assert bytes(dev.flash[1][: len(NEW)]) == NEW and dev.running == 1
    checkin = server.checkins[0]
    assert checkin["running_slot"] == "A" and checkin["running_version"] == "1.0.0"
    assert checkin["slots"] == {"A": {"state": "valid", "version": "1.0.0"},
                                "B": {"state": "empty", "version": None}}
    assert checkin["device_id"] == dev.uid.hex()
    final = server.reports[-1]
    assert final["stage"] == "result" and final["outcome"] == "confirmed"
    assert final["update_id"] == 17 and final["running_slot"] == "B" and final["running_version"] == "1.1.0"
    assert [r["stage"] for r in server.reports].count("progress") >= 2
    assert set(server.auth) == {"Bearer tok"}
    assert server.served == len(NEW)              # streamed once, no re-download
    assert not [x for x in run.lines if "report-failed" in x]


def test_nothing_to_do(dev: FakeSTM32, server: FakeServer) -> None:
    server.offer = None
    run = Run(dev, server.url)
    assert run.cycle() == "none"
    assert run.result() == ("none", "1.0.0", "A", run.result()[3], "up to date")
    assert server.reports == [] and dev.erases == 0


def test_network_error_mid_download_resumes_with_range(dev: FakeSTM32, server: FakeServer) -> None:
    server.drop_after = 70_001
    run = Run(dev, server.url)
    assert run.cycle() == "confirmed"
    assert any(x.startswith("fota: step retry download at 69632") for x in run.lines)
    assert server.ranges == [0, 69632]             # the second request starts at the lost chunk
    assert bytes(dev.flash[1][: len(NEW)]) == NEW


def test_server_down(dev: FakeSTM32) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                      # nothing listens there
    run = Run(dev, f"http://127.0.0.1:{port}")
    assert run.cycle() == "failed"
    _, version, slot, _, reason = run.result()
    assert (version, slot) == ("1.0.0", "A")
    assert reason.startswith("Failed to POST /api/v1/checkin") and "refused" in reason
    assert dev.running == 0 and dev.erases == 0


def test_server_error(dev: FakeSTM32, server: FakeServer) -> None:
    server.checkin_status = 503
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert "server answered 503" in run.result()[4]
    assert dev.erases == 0


def test_wifi_down(dev: FakeSTM32, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    class WLAN:
        def __init__(self, _iface: int) -> None:
            self.attempts = 0

        def active(self, _on: bool) -> None:
            pass

        def isconnected(self) -> bool:
            return False

        def connect(self, ssid: str, password: str) -> None:
            self.attempts += 1

        def disconnect(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "network", types.SimpleNamespace(WLAN=WLAN, STA_IF=0))
    run = Run(dev, server.url, connect=lambda: net.wifi_connect("lab", "pw", retries=2, timeout_ms=50))
    assert run.cycle() == "failed"
    assert run.result()[4] == "Failed to join Wi-Fi lab: not connected after 2 attempts"
    assert run.result()[1:3] == ("?", "?")         # the STM32 was never asked
    assert server.checkins == []


def test_wifi_up(dev: FakeSTM32, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    class WLAN:
        def __init__(self, _iface: int) -> None:
            self.up = False

        def active(self, _on: bool) -> None:
            pass

        def isconnected(self) -> bool:
            return self.up

        def connect(self, ssid: str, password: str) -> None:
            self.up = True

        def ifconfig(self) -> tuple[str, ...]:
            return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    monkeypatch.setitem(sys.modules, "network", types.SimpleNamespace(WLAN=WLAN, STA_IF=0))
    assert net.wifi_connect("lab", "pw", retries=2, timeout_ms=50) == "10.0.0.7"


def test_ready_never_high(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url)
    dev.faults.ready_stuck_low = True
    assert run.cycle() == "failed"
    assert run.result()[4].startswith("STM32 READY stayed low")
    assert server.checkins == [] and dev.running == 0


def test_link_crc_errors_beyond_the_retry_limit(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url)
    n = {"writes": 0}

    def corrupt(k: int, buf: bytearray) -> None:
        if len(buf) > 1000:
            n["writes"] += 1
            if n["writes"] > 3:
                buf[100] ^= 0xFF
    dev.faults.mosi = corrupt
    assert run.cycle() == "failed"
    reason = run.result()[4]
    assert "retries" in reason and "ERR_CRC" in reason
    assert dev.running == 0 and dev.meta["active"] == 0
    assert server.reports[-1]["outcome"] == "failed" and server.reports[-1]["reason"] == reason


def test_stm32_refuses_the_image(dev: FakeSTM32) -> None:
    older = make_image(1, (0, 9, 0), 20_000)
    with FakeServer(older, "0.9.0", "B") as srv:
        run = Run(dev, srv.url)
        assert run.cycle() == "failed"
        assert run.result()[4] == "STM32 refused BEGIN: ERR_VERSION"
        assert dev.erases == 0 and dev.running == 0
        assert srv.reports[-1]["reason"] == "STM32 refused BEGIN: ERR_VERSION"


def test_downgrade_flag_lets_an_older_image_in(dev: FakeSTM32) -> None:
    older = make_image(1, (0, 9, 0), 20_000)
    with FakeServer(older, "0.9.0", "B", downgrade=True) as srv:
        run = Run(dev, srv.url)
        assert run.cycle() == "confirmed"
        assert run.result()[1:3] == ("0.9.0", "B")


def test_power_cut_mid_transfer_restarts_and_completes(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url)
    dev.faults.power_cut_at_write = 12
    assert run.cycle() == "confirmed"
    assert any(x.startswith("fota: step restart no update session any more") for x in run.lines)
    assert run.steps().count("begin") == 2
    assert bytes(dev.flash[1][: len(NEW)]) == NEW


def test_power_cut_during_activate_before_the_record_begins_again(dev: FakeSTM32, server: FakeServer) -> None:
    # The power goes while ACTIVATE's journal record is programmed: the torn record does not count,
    # the STM32 boots the old image and has no session. The resent ACTIVATE gets ERR_SEQ; INFO
    # shows no activation, so the bridge begins again (one more transfer) and completes.
    dev.faults.power_cut_on = CMD["ACTIVATE"]
    run = Run(dev, server.url)
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step restart STM32 refused ACTIVATE: ERR_SEQ" in run.lines
    assert run.steps().count("begin") == 2 and run.steps().count("activate") == 2
    assert run.result()[0:3] == ("confirmed", "1.1.0", "B")
    assert dev.running == 1 and dev.meta["state"] == IC["META_STATE_CONFIRMED"]
    assert dev.meta["result"] == IC["RESULT_CONFIRMED"]
    assert server.served == 2 * len(NEW)            # the whole image once more: the session was gone
    assert server.reports[-1]["outcome"] == "confirmed"


def test_power_cut_after_the_activate_record_goes_on_to_the_confirmation(dev: FakeSTM32,
                                                                         server: FakeServer) -> None:
    # The record is on flash when the power goes: the STM32 boots the new image on trial. The
    # resent ACTIVATE gets ERR_SEQ; INFO shows slot B running 1.1.0 on trial, so the bridge skips
    # BEGIN and the reset and waits for the self-test's confirmation.
    dev.faults.power_cut_on = CMD["ACTIVATE"]
    dev.faults.power_cut_executed = True
    run = Run(dev, server.url)
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step recover boot: STM32 refused ACTIVATE: ERR_SEQ" in run.lines
    assert run.steps().count("begin") == 1 and "reset" not in run.steps()
    assert run.steps()[-2:] == ["boot", "confirm"]
    assert run.result()[0:3] == ("confirmed", "1.1.0", "B")
    assert dev.running == 1 and dev.meta["state"] == IC["META_STATE_CONFIRMED"]
    assert server.served == len(NEW)
    assert server.reports[-1]["outcome"] == "confirmed"
    assert server.reports[-1]["running_slot"] == "B"


def test_new_image_started_without_a_journal_record_is_named(dev: FakeSTM32, server: FakeServer) -> None:
    # A bootloader that boots the newest valid image when its journal is empty (before the
    # first-boot record): the torn ACTIVATE record leaves it empty, so 1.1.0 starts without a
    # trial. The bridge says so instead of beginning again (BEGIN would target the running slot).
    dev.meta.update(active=0xFF, state=0)
    dev.faults.power_cut_on = CMD["ACTIVATE"]
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert run.result()[1:3] == ("1.1.0", "B")
    assert run.result()[4] == ("STM32 runs slot B version 1.1.0 without a journal record, so without a "
                               "trial, after: STM32 refused ACTIVATE: ERR_SEQ")
    assert run.steps().count("begin") == 1 and dev.running == 1
    assert server.reports[-1]["outcome"] == "failed" and server.reports[-1]["running_slot"] == "B"


def test_failed_journal_append_activates_again(dev: FakeSTM32, server: FakeServer) -> None:
    # ACTIVATE answers ERR_FLASH and leaves the session VERIFIED: ACTIVATE again, no new transfer.
    dev.faults.journal_fails = 1
    run = Run(dev, server.url)
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step recover activate: STM32 refused ACTIVATE: ERR_FLASH" in run.lines
    assert run.steps().count("begin") == 1 and run.steps().count("activate") == 2
    assert dev.running == 1 and server.served == len(NEW)


def test_session_lost_again_and_again_gives_up(dev: FakeSTM32, server: FakeServer) -> None:
    # The journal append fails every time: two new sessions, then the cycle fails with the reason.
    dev.faults.journal_fails = 10
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "STM32 refused ACTIVATE: ERR_FLASH"
    assert run.steps().count("recover") == 2 and run.steps().count("activate") == 3
    assert dev.running == 0 and dev.meta["active"] == 0
    assert server.reports[-1]["outcome"] == "failed"


def test_begin_refused_on_trial_is_not_retried(dev: FakeSTM32, server: FakeServer) -> None:
    # The running image is on trial (not confirmed yet): BEGIN's ERR_STATE is a refusal, not a
    # lost session; the cycle ends at once with it.
    dev.meta.update(state=IC["META_STATE_TRIAL"])
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "STM32 refused BEGIN: ERR_STATE"
    assert run.steps().count("begin") == 1 and "restart" not in run.steps()
    assert dev.erases == 0


def test_report_of_an_unknown_running_slot_sends_null(dev: FakeSTM32, server: FakeServer) -> None:
    # A running slot the bridge cannot name goes out as null, which the server's Report model takes.
    models = pytest.importorskip("fota_server.models", reason="the update server package is not installed")
    run = Run(dev, server.url)
    info = run.link.info()
    run.updater.info = {**info, "running_slot": 0xFF}
    run.updater.update_id = 17
    run.updater._report("result", "failed", "lost the STM32", 1200)
    doc = server.reports[-1]
    assert doc["running_slot"] is None and doc["running_version"] == "1.0.0"
    assert models.Report.model_validate(doc).running_slot is None


def test_bridge_reset_mid_transfer_next_cycle_resumes(dev: FakeSTM32, server: FakeServer) -> None:
    class BridgeReset(BaseException):
        pass

    first = Run(dev, server.url)

    def log(line: str) -> None:
        first.lines.append(line)
        if line.startswith("fota: progress") and int(line.split()[2].rstrip("%")) >= 50:
            raise BridgeReset
    first.updater.log = log
    with pytest.raises(BridgeReset):
        first.cycle()
    assert dev.running == 0 and dev.session is not None
    done = dev.session.next
    second = Run(dev, server.url)                  # the ESP32 rebooted: new link, new session
    assert second.cycle() == "confirmed"
    assert f"fota: step resume {done}" in second.lines
    # First cycle: one GET from 0. Second: the head chunk (information block for BEGIN), then the
    # rest from the offset the STM32 reported.
    assert server.ranges == [0, 0, done]


def test_bridge_reset_after_activate_next_cycle_resets(dev: FakeSTM32, server: FakeServer) -> None:
    # The ESP32 reboots after ACTIVATE but before the RESET frame: the STM32 keeps the activated
    # session. Next cycle: BEGIN gets ERR_STATE, INFO shows this image activated: reset, confirm.
    class BridgeReset(BaseException):
        pass

    first = Run(dev, server.url)

    def log(line: str) -> None:
        first.lines.append(line)
        if line == "fota: step reset":
            raise BridgeReset
    first.updater.log = log
    with pytest.raises(BridgeReset):
        first.cycle()
    assert dev.running == 0 and dev.session is not None and dev.session.state == SES["ACTIVATED"]
    second = Run(dev, server.url)
    assert second.cycle() == "confirmed", second.lines
    assert "fota: step recover reset: STM32 refused BEGIN: ERR_STATE" in second.lines
    assert second.steps().count("begin") == 1 and "verify" not in second.steps()
    assert second.steps()[-4:] == ["recover", "reset", "boot", "confirm"]
    assert dev.running == 1 and dev.meta["state"] == IC["META_STATE_CONFIRMED"]


def test_image_that_never_confirms_is_reverted(dev: FakeSTM32, server: FakeServer) -> None:
    dev.faults.app_confirms[1] = False
    run = Run(dev, server.url)
    assert run.cycle() == "reverted"
    assert run.result()[0:3] == ("reverted", "1.0.0", "A")
    assert run.result()[4] == "REVERTED_NO_CONFIRM"
    assert dev.meta["result"] == IC["RESULT_REVERTED_NO_CONFIRM"]
    assert server.reports[-1]["outcome"] == "reverted"


def test_reset_through_nrst(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url, reset="nrst")
    assert run.cycle() == "confirmed"
    assert run.link.port.resets == 1


def test_lost_reset_frame_is_sent_again(dev: FakeSTM32, server: FakeServer) -> None:
    run = Run(dev, server.url)
    state = {"armed": True}

    def drop_reset(k: int, buf: bytearray) -> None:
        if buf[2] == CMD["RESET"] and state["armed"]:      # once
            state["armed"] = False
            buf[9] ^= 0xFF
    dev.faults.mosi = drop_reset
    assert run.cycle() == "confirmed"
    assert "fota: step reset again" in run.lines


def test_an_unexpected_error_still_ends_with_a_result_line(dev: FakeSTM32, server: FakeServer) -> None:
    server.offer = {"update": True, "update_id": 5, "version": "1.1.0", "target_slot": "B",
                    "url": "/x", "size": 1000, "sha256": "zz"}          # not hex: a server bug
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "Failed to check in: the server's update offer is incomplete"


def test_a_bug_still_ends_with_a_result_line(dev: FakeSTM32, server: FakeServer) -> None:
    server.offer = ["not", "an", "object"]  # type: ignore[assignment]
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4].startswith("unexpected AttributeError: ")


def test_download_error_fails_after_the_retries(dev: FakeSTM32, server: FakeServer) -> None:
    assert server.offer is not None
    server.offer["url"] = "/api/v1/firmware/9.9.9/slot-b.bin"      # the server has no such file
    run = Run(dev, server.url)
    assert run.cycle() == "failed"
    reason = run.result()[4]
    assert reason == ("Failed to download the image at offset 0: Failed to GET "
                      "/api/v1/firmware/9.9.9/slot-b.bin: server answered 404")
    assert sum(1 for x in run.lines if x.startswith("fota: step retry download at 0")) == 3
    assert dev.erases == 0 and dev.running == 0
