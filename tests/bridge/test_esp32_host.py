"""Host commands for the ESP32 (stm32_fota.esp32): status-line parsing, the progress bar, deploy's
tool calls and error messages, and `update` over a stand-in for mpremote that prints what the
bridge prints."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from fota_testkit.tls import Pki, make_pki
from stm32_fota.certs import read_cert_info
from stm32_fota.errors import FotaError
from stm32_fota.esp32 import Proc, ProgressBar, ca_bundle, deploy, parse_line, run_update

_PTY = os.openpty()
DEVICE = os.ttyname(_PTY[1])   # a terminal device stands for a connected port


def test_parse_status_lines() -> None:
    step = parse_line("fota: step download 1.1.0 slot B 262144 bytes")
    assert step is not None
    assert (step.kind, step.name, step.detail) == ("step", "download", "1.1.0 slot B 262144 bytes")
    prog = parse_line("fota: progress 42% 110592/262144")
    assert prog is not None and (prog.percent, prog.done, prog.size) == (42, 110592, 262144)
    res = parse_line("fota: result reverted 1.0.0 slot A in 12.5 s: REVERTED_NO_CONFIRM")
    assert res is not None and (res.name, res.version, res.slot, res.seconds, res.detail) == \
        ("reverted", "1.0.0", "A", 12.5, "REVERTED_NO_CONFIRM")
    ok = parse_line("fota: result confirmed 1.1.0 slot B in 4.2 s")
    assert ok is not None and ok.detail == ""
    assert parse_line("MicroPython v1.24.1 on 2024-11-29") is None


def test_progress_bar_redraws_one_line() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    for line in ("fota: step write", "fota: progress 50% 5/10", "fota: progress 100% 10/10",
                 "fota: step verify"):
        bar(line)
    assert out.getvalue() == ("fota: step write\n"
                              "\r  [#####-----]  50% 5/10 bytes\r  [##########] 100% 10/10 bytes\n"
                              "fota: step verify\n")


class FakeTools:
    def __init__(self, fail: dict[str, Proc] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail or {}
        self.config: dict[str, str] | None = None

    def __call__(self, cmd: Sequence[str], timeout_s: float) -> Proc:
        cmd = list(cmd)
        self.calls.append(cmd)
        if ":fota_new.json" in cmd:
            self.config = json.loads(Path(cmd[cmd.index(":fota_new.json") - 1]).read_text())
        for key, proc in self.fail.items():
            if key in " ".join(cmd):
                return proc
        if "exec" in cmd and "fota: bridge ok" in " ".join(cmd):
            return Proc(0, 'fota: bridge ok {"server": "http://10.0.0.2:8080", "wifi": "lab", '
                           '"password": true, "token": false, "ca_file": "ca.pem", "ca": false, '
                           '"settings": 19}\n', "")
        return Proc(0, "", "")


def test_deploy_flashes_copies_and_checks(tmp_path: Path) -> None:
    fw = tmp_path / "micropython.bin"
    fw.write_bytes(b"\xe9" + bytes(100))
    tools = FakeTools()
    r = deploy(DEVICE, fw, {"wifi_ssid": "lab", "wifi_password": "pw", "server": "http://10.0.0.2:8080",
                            "token": ""}, runner=tools, build_dir=tmp_path / "esp32")
    erase, write, copy, check = tools.calls
    assert erase[-1] == "erase-flash" and "--port" in erase and DEVICE in erase
    assert "write-flash" in write
    assert write[-3:] == ["-z", "0x1000", str(fw)]
    copied = [copy[i + 1] for i, a in enumerate(copy) if a == "cp"]
    assert {Path(p).name for p in copied} >= {"fotalink.mpy", "updater.mpy", "main.py", "fota_new.json"}
    assert tools.config == {"wifi_ssid": "lab", "wifi_password": "pw", "server": "http://10.0.0.2:8080"}
    assert any("c.update(json.load(f))" in a for a in copy)     # merged into the device's config.json
    assert "import fota_const, fotalink, config, net, hw, updater" in check[check.index("exec") + 1]
    assert check[-5:] == ["+", "reset", "+", "sleep", "1.5"]   # main.py starts polling
    assert r.config_written and "main.py" in r.files
    assert r.check == ("server http://10.0.0.2:8080; Wi-Fi lab; token none; CA file ca.pem absent")


def test_deploy_without_settings_keeps_the_device_config(tmp_path: Path) -> None:
    tools = FakeTools()
    r = deploy(DEVICE, None, {}, runner=tools, build_dir=tmp_path)
    assert not r.config_written and tools.config is None
    assert not any("esptool" in " ".join(c) for c in tools.calls)


def test_deploy_missing_firmware_file(tmp_path: Path) -> None:
    with pytest.raises(FotaError, match=r"^Failed to flash MicroPython: .*nope.bin does not exist"):
        deploy(DEVICE, tmp_path / "nope.bin", runner=FakeTools(), build_dir=tmp_path)


@pytest.mark.parametrize(("err", "hint"), [
    ("mpremote: failed to access /dev/ttyUSB0 (it may be in use by another program)", "the port is busy"),
    ("mpremote: could not enter raw repl", "the device does not answer"),
])
def test_deploy_translates_mpremote_failures(tmp_path: Path, err: str, hint: str) -> None:
    tools = FakeTools({"fs cp": Proc(1, "", err)})
    with pytest.raises(FotaError) as e:
        deploy(DEVICE, None, runner=tools, build_dir=tmp_path)
    assert str(e.value).startswith(f"Failed to copy the bridge on {DEVICE}: {err}")
    assert hint in str(e.value)


def test_deploy_missing_port() -> None:
    with pytest.raises(FotaError, match=r"^Failed to open /dev/ttyNOPE0: no such port"):
        deploy("/dev/ttyNOPE0", runner=FakeTools())


def _fake_mpremote(tmp_path: Path, lines: list[str], code: int = 0, hang: bool = False) -> list[str]:
    script = tmp_path / "fake_mpremote.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        assert sys.argv[1] == "connect" and sys.argv[3] == "exec" and "updater.update(" in sys.argv[4]
        for line in {lines!r}:
            print(line, flush=True)
        if {hang!r}:
            time.sleep(60)
        sys.exit({code})
    """))
    return [sys.executable, str(script)]


def test_update_streams_lines_and_returns_the_result(tmp_path: Path) -> None:
    lines = ["fota: step info", "fota: progress 50% 2/4", "fota: progress 100% 4/4",
             "fota: result confirmed 1.1.0 slot B in 4.2 s"]
    seen: list[str] = []
    r = run_update(DEVICE, seen.append, tool=_fake_mpremote(tmp_path, lines))
    assert seen == lines and r.ok
    assert (r.outcome, r.version, r.slot, r.seconds) == ("confirmed", "1.1.0", "B", 4.2)


def test_update_reverted_is_not_ok(tmp_path: Path) -> None:
    lines = ["fota: result reverted 1.0.0 slot A in 9.0 s: REVERTED_NO_CONFIRM"]
    r = run_update(DEVICE, lambda _l: None, tool=_fake_mpremote(tmp_path, lines))
    assert not r.ok and r.reason == "REVERTED_NO_CONFIRM"


def test_update_without_result_line_is_an_error(tmp_path: Path) -> None:
    tool = _fake_mpremote(tmp_path, ["Traceback (most recent call last):",
                                     "ImportError: no module named 'updater'"])
    with pytest.raises(FotaError, match=r"printed no result line \(last line: ImportError: no module named"):
        run_update(DEVICE, lambda _l: None, tool=tool)


def test_update_of_a_silent_device_stops_at_the_timeout(tmp_path: Path) -> None:
    tool = _fake_mpremote(tmp_path, ["fota: step info"], hang=True)
    t0 = time.monotonic()
    with pytest.raises(FotaError, match=r"^Failed to run the update on .*: no result within 1 s$"):
        run_update(DEVICE, lambda _l: None, timeout_s=1, tool=tool)
    assert time.monotonic() - t0 < 10


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class CaTools(FakeTools):
    """FakeTools that keeps the ca.pem deploy copies and answers the import check like a device
    whose config says `server` and whose filesystem has (or lacks) its ca_file."""

    def __init__(self, https: bool, has_ca: bool) -> None:
        super().__init__()
        server = "https://10.0.0.2:8443" if https else "http://127.0.0.1:8080"
        self.answer = "fota: bridge ok " + json.dumps({"server": server, "wifi": "", "password": False,
                                                       "token": True, "ca_file": "ca.pem", "ca": has_ca,
                                                       "settings": 21}) + "\n"
        self.ca: str | None = None

    def __call__(self, cmd: Sequence[str], timeout_s: float) -> Proc:
        cmd = list(cmd)
        if ":ca.pem" in cmd:
            self.ca = Path(cmd[cmd.index(":ca.pem") - 1]).read_text()
        if "exec" in cmd and "fota: bridge ok" in " ".join(cmd):
            self.calls.append(cmd)
            return Proc(0, self.answer, "")
        return super().__call__(cmd, timeout_s)


def test_deploy_bundles_the_ca_certificates_into_ca_pem(tmp_path: Path, pki: Pki) -> None:
    tools = CaTools(https=True, has_ca=True)
    r = deploy(DEVICE, None, {"server": "https://10.0.0.2:8443"}, runner=tools, build_dir=tmp_path,
               ca_files=[pki.ca, pki.other_ca])
    assert tools.ca is not None and tools.ca.count("-----BEGIN CERTIFICATE-----") == 2
    assert [i.fingerprint for i in r.ca] == [read_cert_info(p)[0].fingerprint for p in (pki.ca, pki.other_ca)]
    assert any("os.stat(cfg['ca_file'])" in a for a in tools.calls[-1])
    assert r.check.startswith("server https://10.0.0.2:8443; Wi-Fi none (the bridge will say `no Wi-Fi "
                              "configured`; set --wifi and --password); token set; CA file ca.pem present")


def test_an_https_bridge_without_a_ca_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FotaError, match=r"its server URL is https:// but no CA certificate is on the device; "
                                        r"pass --ca"):
        deploy(DEVICE, None, {"server": "https://10.0.0.2:8443"}, runner=CaTools(True, False),
               build_dir=tmp_path)
    # http:// needs none
    assert deploy(DEVICE, None, {"server": "http://127.0.0.1:8080"}, runner=CaTools(False, False),
                  build_dir=tmp_path).ca == []


def test_bad_ca_files_are_refused_before_anything_is_copied(tmp_path: Path, pki: Pki) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    tools = CaTools(True, True)
    cases = [
        (pki.cert, r"server-ip\.pem as a CA certificate: .*is not a CA \(a server's own certificate\?\)"),
        (junk, r"Failed to read the CA certificate .*junk\.pem: not a PEM certificate"),
        (tmp_path / "nope.pem", r"Failed to read the CA certificate .*nope\.pem: No such file"),
    ]
    for path, message in cases:
        with pytest.raises(FotaError, match=message):
            deploy(DEVICE, None, {}, runner=tools, build_dir=tmp_path, ca_files=[path])
    assert tools.calls == []
    with pytest.raises(FotaError, match=r"other/tls/ca\.pem as a CA certificate: .*expired on "):
        ca_bundle([pki.other_ca], now=time.time() + 30 * 365 * 86400)
    with pytest.raises(FotaError, match=r"bytes of PEM, more than 16384; .*give only the CAs it needs"):
        ca_bundle([pki.ca] * 40)
