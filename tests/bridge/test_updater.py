"""The update cycle (esp32_mpy/updater.py + net.py) under CPython, with a local HTTP stand-in for the
device API (fota_lab.fakes) and fakes for `network`. Each failure mode ends in one clear
`fota: result` line, with the STM32 still running its old image.

Every scenario that takes ``device`` runs on the fake STM32 and on the STM32 twin running the real
firmware, with the same assertions; power cuts and damaged frames are made at the port, the same way
for both. The scenarios at the end run on the fake alone: they need a fault inside the device that
the twin cannot produce on demand (READY stuck low, a failing journal append, a bootloader without
the first-boot record), or a device state set directly.
"""

from __future__ import annotations

import re
import socket
import sys
import types
from collections.abc import Iterator

import net
import pytest
from fota_formats.image import validate_image
from fota_formats.spec import IMAGE, PROTOCOL
from fota_lab.fakes import FakeServer
from fota_testkit.bridge import Device, FakeDevice, WirePort
from fota_testkit.fake_stm32 import Record
from fotalink import Link
from updater import Updater

CMD = PROTOCOL.tables["commands"]
SES = PROTOCOL.tables["session"]
IC = IMAGE.constants
SIZE = 48 * 1024        # twelve chunks: the twin programs its flash word by word in emulation
RESULT = re.compile(r"^fota: result (\w+) (\S+) slot (\S) in ([0-9.]+) s(?:: (.*))?$")


class Run:
    """One bridge (link + HTTP + updater) on ``device`` and its console lines."""

    def __init__(self, device: Device, server_url: str, **cfg: object) -> None:
        self.lines: list[str] = []
        self.device = device
        conf = {"http_retries": 3, "confirm_timeout_s": 30, "reset": "command", **cfg}
        self.port: WirePort = device.port()
        self.link = Link(self.port)
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


def info(device: Device) -> dict:
    """INFO on a fresh link, as a bridge that starts now would see it."""
    return Link(device.port()).info()


@pytest.fixture
def new(device: Device) -> bytes:
    return device.image(1, (1, 1, 0), SIZE, build=3)


@pytest.fixture
def server(new: bytes) -> Iterator[FakeServer]:
    with FakeServer(new, "1.1.0", "B") as s:
        yield s


def test_full_cycle_confirms_and_reports(device: Device, new: bytes, server: FakeServer) -> None:
    run = Run(device, server.url, token="tok")
    assert run.cycle() == "confirmed"
    outcome, version, slot, secs, reason = run.result()
    assert (outcome, version, slot, reason) == ("confirmed", "1.1.0", "B", None)
    assert float(secs) > 2.0                       # write + the self-test, virtual time
    assert run.steps()[:4] == ["info", "stm32", "checkin", "download"]
    for s in ("begin", "verify", "activate", "reset", "boot", "confirm"):
        assert s in run.steps()
    # The running image's signing key (its KEYHASH TLV) and counter, and the device's floor.
    running = validate_image(device.slot_bytes(0, 64 * 1024), 0, allow_trailing=True)
    key = running.key_hash[:4].hex()
    assert f"fota: step stm32 slot A version 1.0.0 key {key} counter 1 floor 1 last NONE" in run.lines
    assert f"fota: step download 1.1.0 slot B {SIZE} bytes counter 1" in run.lines
    assert f"fota: progress 100% {SIZE}/{SIZE}" in run.lines
    assert device.slot_bytes(1, len(new)) == new
    checkin = server.checkins[0]
    assert checkin["running_slot"] == "A" and checkin["running_version"] == "1.0.0"
    assert (checkin["security_counter"], checkin["key_id"]) == (1, key)
    assert checkin["slots"] == {"A": {"state": "valid", "version": "1.0.0"},
                                "B": {"state": "empty", "version": None}}
    assert checkin["device_id"] == device.uid.hex()
    final = server.reports[-1]
    assert final["stage"] == "result" and final["outcome"] == "confirmed"
    assert final["update_id"] == 17 and final["running_slot"] == "B" and final["running_version"] == "1.1.0"
    assert [r["stage"] for r in server.reports].count("progress") >= 2
    assert set(server.auth) == {"Bearer tok"}
    assert server.served == len(new)              # streamed once, no re-download
    assert not [x for x in run.lines if "report-failed" in x]
    after = info(device)
    assert (after["running_slot"], after["run_minor"], after["run_build"]) == (1, 1, 3)
    assert (after["meta_state"], after["meta_seq"], after["last_result"]) == \
        (IC["META_STATE_CONFIRMED"], 4, IC["RESULT_CONFIRMED"])


def test_nothing_to_do(device: Device, server: FakeServer) -> None:
    server.offer = None
    before = device.flash()
    run = Run(device, server.url)
    assert run.cycle() == "none"
    assert run.result() == ("none", "1.0.0", "A", run.result()[3], "up to date")
    assert server.reports == [] and device.flash() == before


def test_the_group_in_config_json_is_reported_at_check_in(device: Device, server: FakeServer) -> None:
    server.offer = None
    Run(device, server.url).cycle()
    Run(device, server.url, group="lab-east").cycle()
    assert "group" not in server.checkins[0]                 # none configured: the field is left out
    assert server.checkins[1]["group"] == "lab-east"

def test_network_error_mid_download_resumes_with_range(device: Device, new: bytes,
                                                       server: FakeServer) -> None:
    server.drop_after = 20_001
    run = Run(device, server.url)
    assert run.cycle() == "confirmed"
    assert any(x.startswith("fota: step retry download at 16384") for x in run.lines), run.lines
    assert server.ranges == [0, 16384]             # the second request starts at the lost chunk
    assert device.slot_bytes(1, len(new)) == new


def test_server_down(device: Device) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                      # nothing listens there
    before = device.flash()
    run = Run(device, f"http://127.0.0.1:{port}")
    assert run.cycle() == "failed"
    _, version, slot, _, reason = run.result()
    assert (version, slot) == ("1.0.0", "A")
    assert reason.startswith("Failed to POST /api/v1/checkin") and "refused" in reason
    assert device.flash() == before


def test_server_error(device: Device, server: FakeServer) -> None:
    server.checkin_status = 503
    before = device.flash()
    run = Run(device, server.url)
    assert run.cycle() == "failed"
    assert "server answered 503" in run.result()[4]
    assert device.flash() == before


def test_link_crc_errors_beyond_the_retry_limit(device: Device, server: FakeServer) -> None:
    run = Run(device, server.url)
    n = {"writes": 0}

    def corrupt(_k: int, buf: bytearray) -> None:
        if len(buf) > 1000:
            n["writes"] += 1
            if n["writes"] > 3:
                buf[100] ^= 0xFF
    run.port.mosi = corrupt
    assert run.cycle() == "failed"
    reason = run.result()[4]
    assert "retries" in reason and "ERR_CRC" in reason
    now = info(device)
    assert (now["running_slot"], now["meta_active"]) == (0, 0)
    assert server.reports[-1]["outcome"] == "failed" and server.reports[-1]["reason"] == reason


def test_stm32_refuses_the_image(device: Device) -> None:
    older = device.image(1, (0, 9, 0), 20_000)
    before = device.flash()
    with FakeServer(older, "0.9.0", "B") as srv:
        run = Run(device, srv.url)
        assert run.cycle() == "failed"
        assert run.result()[4] == "STM32 refused BEGIN: ERR_VERSION"
        assert srv.reports[-1]["reason"] == "STM32 refused BEGIN: ERR_VERSION"
    assert device.flash() == before


@pytest.mark.parametrize(("tamper", "status"), [
    ("code", "ERR_SIGNATURE"),          # a byte of the signed image changed after signing
    ("key", "ERR_UNKNOWN_KEY"),         # re-signed by someone else's key
])
def test_a_tampered_image_that_bypassed_the_server_is_refused_by_the_stm32(device: Device, tamper: str,
                                                                           status: str) -> None:
    """The server's signature check is bypassed (a compromised server, or a bridge pointed at
    another one): the bridge, which holds no key, streams the image; the STM32 refuses it at VERIFY
    on its own, the running slot and the journal stay as they were, and the refusal reaches the
    server's report verbatim."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fota_lab.images import restamp

    good = device.image(1, (1, 1, 0), 40_000, build=3)
    if tamper == "code":
        bad = bytearray(good)
        bad[0x200 + 0x800] ^= 0x01
        image = bytes(bad)
    else:
        image = restamp(good, (1, 1, 0), key=Ed25519PrivateKey.generate())
    before = info(device)
    with FakeServer(image, "1.1.0", "B") as srv:
        run = Run(device, srv.url)
        assert run.cycle() == "failed"
        assert run.result()[4] == f"STM32 refused VERIFY: {status}"
        assert srv.reports[-1]["reason"] == f"STM32 refused VERIFY: {status}"
    now = info(device)
    assert (now["running_slot"], now["meta_active"], now["meta_seq"]) == (0, 0, before["meta_seq"])


def test_downgrade_flag_lets_an_older_image_in(device: Device) -> None:
    older = device.image(1, (0, 9, 0), 20_000)
    with FakeServer(older, "0.9.0", "B", downgrade=True) as srv:
        run = Run(device, srv.url)
        assert run.cycle() == "confirmed", run.lines
        assert run.result()[1:3] == ("0.9.0", "B")


class CutBefore:
    """A power cut just before a transaction: the ``n``-th WRITE, or the first ``cmd`` frame, or the
    transaction after it (``after``: the request was executed, its response is lost)."""

    def __init__(self, device: Device, *, write: int = 0, cmd: int = -1, after: bool = False) -> None:
        self.device, self.write, self.cmd, self.after = device, write, cmd, after
        self.writes = 0
        self.armed = False
        self.done = False

    def __call__(self, _k: int, req: bytes) -> None:
        if self.done:
            return
        if self.armed:
            self.done = True
            self.device.power_cycle()
            return
        is_write = len(req) > 1000
        self.writes += is_write
        if (self.write and is_write and self.writes == self.write) or (not is_write and req[2] == self.cmd):
            if self.after:
                self.armed = True
            else:
                self.done = True
                self.device.power_cycle()


def test_power_cut_mid_transfer_restarts_and_completes(device: Device, new: bytes,
                                                       server: FakeServer) -> None:
    run = Run(device, server.url)
    run.port.before = CutBefore(device, write=5)
    assert run.cycle() == "confirmed", run.lines
    assert any(x.startswith("fota: step restart no update session any more") for x in run.lines), run.lines
    assert run.steps().count("begin") == 2
    assert device.slot_bytes(1, len(new)) == new


def test_power_cut_during_activate_before_the_record_begins_again(device: Device, new: bytes,
                                                                   server: FakeServer) -> None:
    # The power goes as ACTIVATE arrives: no record, the STM32 boots the old image and has no
    # session. The resent ACTIVATE gets ERR_SEQ; INFO shows no activation, so the bridge begins
    # again (one more transfer) and completes.
    run = Run(device, server.url)
    run.port.before = CutBefore(device, cmd=CMD["ACTIVATE"])
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step restart STM32 refused ACTIVATE: ERR_SEQ" in run.lines
    assert run.steps().count("begin") == 2 and run.steps().count("activate") == 2
    assert run.result()[0:3] == ("confirmed", "1.1.0", "B")
    now = info(device)
    assert (now["running_slot"], now["meta_state"], now["last_result"]) == \
        (1, IC["META_STATE_CONFIRMED"], IC["RESULT_CONFIRMED"])
    assert server.served == 2 * len(new)            # the whole image once more: the session was gone
    assert server.reports[-1]["outcome"] == "confirmed"


def test_power_cut_after_the_activate_record_goes_on_to_the_confirmation(device: Device, new: bytes,
                                                                         server: FakeServer) -> None:
    # The record is on flash when the power goes: the STM32 boots the new image on trial. The
    # resent ACTIVATE gets ERR_SEQ; INFO shows slot B running 1.1.0 on trial, so the bridge skips
    # BEGIN and the reset and waits for the self-test's confirmation.
    run = Run(device, server.url)
    run.port.before = CutBefore(device, cmd=CMD["ACTIVATE"], after=True)
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step recover boot: STM32 refused ACTIVATE: ERR_SEQ" in run.lines
    assert run.steps().count("begin") == 1 and "reset" not in run.steps()
    assert run.steps()[-2:] == ["boot", "confirm"]
    assert run.result()[0:3] == ("confirmed", "1.1.0", "B")
    now = info(device)
    assert (now["running_slot"], now["meta_state"]) == (1, IC["META_STATE_CONFIRMED"])
    assert server.served == len(new)
    assert server.reports[-1]["outcome"] == "confirmed"
    assert server.reports[-1]["running_slot"] == "B"


def test_bridge_reset_mid_transfer_next_cycle_resumes(device: Device, server: FakeServer) -> None:
    class BridgeReset(BaseException):
        pass

    first = Run(device, server.url)

    def log(line: str) -> None:
        first.lines.append(line)
        if line.startswith("fota: progress") and int(line.split()[2].rstrip("%")) >= 50:
            raise BridgeReset
    first.updater.log = log
    with pytest.raises(BridgeReset):
        first.cycle()
    now = info(device)
    assert (now["running_slot"], now["session_state"]) == (0, SES["RECEIVING"])
    done = now["session_next"]
    assert done >= SIZE // 2
    second = Run(device, server.url)               # the ESP32 rebooted: new link, new session
    assert second.cycle() == "confirmed", second.lines
    assert f"fota: step resume {done}" in second.lines
    # First cycle: one GET from 0. Second: the head chunk (information block for BEGIN), then the
    # rest from the offset the STM32 reported.
    assert server.ranges == [0, 0, done]


def test_bridge_reset_after_activate_next_cycle_resets(device: Device, server: FakeServer) -> None:
    # The ESP32 reboots after ACTIVATE but before the RESET frame: the STM32 keeps the activated
    # session. Next cycle: BEGIN gets ERR_STATE, INFO shows this image activated: reset, confirm.
    class BridgeReset(BaseException):
        pass

    first = Run(device, server.url)

    def log(line: str) -> None:
        first.lines.append(line)
        if line == "fota: step reset":
            raise BridgeReset
    first.updater.log = log
    with pytest.raises(BridgeReset):
        first.cycle()
    now = info(device)
    assert (now["running_slot"], now["session_state"]) == (0, SES["ACTIVATED"])
    second = Run(device, server.url)
    assert second.cycle() == "confirmed", second.lines
    assert "fota: step recover reset: STM32 refused BEGIN: ERR_STATE" in second.lines
    assert second.steps().count("begin") == 1 and "verify" not in second.steps()
    assert second.steps()[-4:] == ["recover", "reset", "boot", "confirm"]
    now = info(device)
    assert (now["running_slot"], now["meta_state"]) == (1, IC["META_STATE_CONFIRMED"])


def test_image_that_never_confirms_is_reverted(device: Device) -> None:
    # The twin runs the build's noconfirm variant: its self-test never passes, each of the three
    # trial boots ends with the watchdog, then the bootloader goes back (36 s of virtual time).
    img = device.image(1, (1, 1, 0), 16 * 1024, confirms=False)
    with FakeServer(img, "1.1.0", "B") as srv:
        run = Run(device, srv.url, confirm_timeout_s=300)
        assert run.cycle() == "reverted", run.lines
    assert run.result()[0:3] == ("reverted", "1.0.0", "A")
    assert run.result()[4] == "REVERTED_WATCHDOG"
    assert srv.reports[-1]["outcome"] == "reverted"
    now = info(device)
    # ACTIVATE (3 attempts), one record per trial boot, then the revert: seq 1 -> 6.
    assert (now["meta_active"], now["meta_seq"], now["meta_attempts"]) == (0, 6, 0)
    assert now["last_result"] == IC["RESULT_REVERTED_WATCHDOG"]


def test_reset_through_nrst(device: Device, server: FakeServer) -> None:
    run = Run(device, server.url, reset="nrst")
    assert run.cycle() == "confirmed", run.lines
    assert run.port.resets == 1


def test_lost_reset_frame_is_sent_again(device: Device, server: FakeServer) -> None:
    run = Run(device, server.url)
    state = {"armed": True}

    def drop_reset(_k: int, buf: bytearray) -> None:
        if buf[2] == CMD["RESET"] and state["armed"]:      # once
            state["armed"] = False
            buf[9] ^= 0xFF
    run.port.mosi = drop_reset
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step reset again" in run.lines


def test_an_unexpected_error_still_ends_with_a_result_line(device: Device, server: FakeServer) -> None:
    server.offer = {"update": True, "update_id": 5, "version": "1.1.0", "target_slot": "B",
                    "url": "/x", "size": 1000, "sha256": "zz"}          # not hex: a server bug
    run = Run(device, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "Failed to check in: the server's update offer is incomplete"


def test_a_bug_still_ends_with_a_result_line(device: Device, server: FakeServer) -> None:
    server.offer = ["not", "an", "object"]  # type: ignore[assignment]
    run = Run(device, server.url)
    assert run.cycle() == "failed"
    assert run.result()[4].startswith("unexpected AttributeError: ")


def test_download_error_fails_after_the_retries(device: Device, server: FakeServer) -> None:
    assert server.offer is not None
    server.offer["url"] = "/api/v1/firmware/9.9.9/slot-b.bin"      # the server has no such file
    before = device.flash()
    run = Run(device, server.url)
    assert run.cycle() == "failed"
    reason = run.result()[4]
    assert reason == ("Failed to download the image at offset 0: Failed to GET "
                      "/api/v1/firmware/9.9.9/slot-b.bin: server answered 404")
    assert sum(1 for x in run.lines if x.startswith("fota: step retry download at 0")) == 3
    assert device.flash() == before


# -- no STM32 involved --------------------------------------------------------------------------------

def test_wifi_down(monkeypatch: pytest.MonkeyPatch) -> None:
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
    device = FakeDevice()
    with FakeServer(device.image(1, (1, 1, 0), SIZE), "1.1.0", "B") as srv:
        run = Run(device, srv.url,
                  connect=lambda: net.wifi_connect("lab", "pw", retries=2, timeout_ms=50))
        assert run.cycle() == "failed"
    assert run.result()[4] == "Failed to join Wi-Fi lab: not connected after 2 attempts"
    assert run.result()[1:3] == ("?", "?")         # the STM32 was never asked
    assert srv.checkins == [] and device.dev.transactions == 0


def test_wifi_up(monkeypatch: pytest.MonkeyPatch) -> None:
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


# -- fake only: faults inside the device, or a device state set directly ---------------------------

@pytest.fixture
def fake() -> FakeDevice:
    return FakeDevice()


@pytest.fixture
def fake_server(fake: FakeDevice) -> Iterator[FakeServer]:
    with FakeServer(fake.image(1, (1, 1, 0), SIZE, build=3), "1.1.0", "B") as s:
        yield s


def test_ready_never_high(fake: FakeDevice, fake_server: FakeServer) -> None:
    run = Run(fake, fake_server.url)
    fake.dev.faults.ready_stuck_low = True
    assert run.cycle() == "failed"
    assert run.result()[4].startswith("STM32 READY stayed low")
    assert fake_server.checkins == [] and fake.dev.running == 0


def test_new_image_started_without_a_journal_record_is_named(fake: FakeDevice,
                                                             fake_server: FakeServer) -> None:
    # A bootloader that boots the newest valid image when its journal is empty (before the
    # first-boot record existed): a torn ACTIVATE record leaves the journal empty, so 1.1.0 starts
    # without a trial. The bridge says so instead of beginning again (BEGIN would target the
    # running slot). The twin's bootloader writes the first-boot record: it cannot get there.
    fake.dev.forget_journal()
    fake.dev.faults.no_first_boot_record = True
    run = Run(fake, fake_server.url)
    run.port.before = CutBefore(fake, cmd=CMD["ACTIVATE"])
    assert run.cycle() == "failed"
    assert run.result()[1:3] == ("1.1.0", "B")
    assert run.result()[4] == ("STM32 runs slot B version 1.1.0 without a journal record, so without a "
                               "trial, after: STM32 refused ACTIVATE: ERR_SEQ")
    assert run.steps().count("begin") == 1 and fake.dev.running == 1
    assert fake_server.reports[-1]["outcome"] == "failed" and fake_server.reports[-1]["running_slot"] == "B"


def test_failed_journal_append_activates_again(fake: FakeDevice, fake_server: FakeServer) -> None:
    # ACTIVATE answers ERR_FLASH and leaves the session VERIFIED: ACTIVATE again, no new transfer.
    fake.dev.faults.journal_fails = 1
    run = Run(fake, fake_server.url)
    assert run.cycle() == "confirmed", run.lines
    assert "fota: step recover activate: STM32 refused ACTIVATE: ERR_FLASH" in run.lines
    assert run.steps().count("begin") == 1 and run.steps().count("activate") == 2
    assert fake.dev.running == 1 and fake_server.served == SIZE


def test_session_lost_again_and_again_gives_up(fake: FakeDevice, fake_server: FakeServer) -> None:
    # The journal append fails every time: two new sessions, then the cycle fails with the reason.
    fake.dev.faults.journal_fails = 10
    run = Run(fake, fake_server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "STM32 refused ACTIVATE: ERR_FLASH"
    assert run.steps().count("recover") == 2 and run.steps().count("activate") == 3
    assert fake.dev.running == 0 and fake.dev.record is not None and fake.dev.record.active == 0
    assert fake_server.reports[-1]["outcome"] == "failed"


def test_begin_refused_on_trial_is_not_retried(fake: FakeDevice, fake_server: FakeServer) -> None:
    # The running image is on trial (not confirmed yet): BEGIN's ERR_STATE is a refusal, not a
    # lost session; the cycle ends at once with it. (The journal record is set directly.)
    fake.dev.record = Record(0, IC["META_STATE_TRIAL"], 2, IC["RESULT_NONE"], 2)
    run = Run(fake, fake_server.url)
    assert run.cycle() == "failed"
    assert run.result()[4] == "STM32 refused BEGIN: ERR_STATE"
    assert run.steps().count("begin") == 1 and "restart" not in run.steps()
    assert fake.dev.erases == 0


def test_report_of_an_unknown_running_slot_sends_null(fake: FakeDevice, fake_server: FakeServer) -> None:
    # A running slot the bridge cannot name goes out as null, which the server's Report model takes.
    from fota_server import models
    run = Run(fake, fake_server.url)
    now = run.link.info()
    run.updater.info = {**now, "running_slot": 0xFF}
    run.updater.update_id = 17
    run.updater._report("result", "failed", "lost the STM32", 1200)
    doc = fake_server.reports[-1]
    assert doc["running_slot"] is None and doc["running_version"] == "1.0.0"
    assert models.Report.model_validate(doc).running_slot is None
