"""deploy-esp32 and update as a new user meets them: the server URL checked before anything is
copied, a file that is not a serial port, esptool's own explanation kept, and `update` on a port
with nothing behind it failing at once."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from stm32_fota.errors import FotaError
from stm32_fota.esp32 import Proc, check_server_url, deploy, run_update

_PTY = os.openpty()
DEVICE = os.ttyname(_PTY[1])


class Tools:
    def __init__(self, fail: dict[str, Proc] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail or {}

    def __call__(self, cmd: Sequence[str], timeout_s: float) -> Proc:
        self.calls.append(list(cmd))
        for key, proc in self.fail.items():
            if key in " ".join(cmd):
                return proc
        return Proc(0, "", "")


@pytest.mark.parametrize(("url", "reason"), [
    ("192.168.1.10:8080", "no scheme; write http://192.168.1.10:8080 or https://192.168.1.10:8080"),
    ("ftp://192.168.1.10", "the scheme must be http:// or https://, not ftp://"),
    ("http://192.168.1.10:80800", "the port must be a number from 1 to 65535"),
    ("http://192.168.1.10:http", "the port must be a number from 1 to 65535"),
    ("https://:8443", "no host"),
    ("http://10.0.0.2:8080/?x=1", "only scheme, host, port and a path prefix are allowed"),
])
def test_a_bad_server_url_is_refused_before_anything_is_copied(tmp_path: Path, url: str, reason: str) -> None:
    tools = Tools()
    with pytest.raises(FotaError) as e:
        deploy(DEVICE, None, {"server": url}, runner=tools, build_dir=tmp_path)
    assert str(e.value).startswith(f"Failed to use the server URL {url!r}: {reason}")
    assert tools.calls == []


@pytest.mark.parametrize("group", ["-east", "lab east", "x" * 65, "ost\u00e9"])
def test_a_bad_group_is_refused_before_anything_is_copied(tmp_path: Path, group: str) -> None:
    tools = Tools()
    with pytest.raises(FotaError, match=r"is not a group name: letters, digits"):
        deploy(DEVICE, None, {"group": group}, runner=tools, build_dir=tmp_path)
    assert tools.calls == []

def test_good_server_urls_pass() -> None:
    assert check_server_url("http://192.168.1.10:8080/") == "http://192.168.1.10:8080"
    assert check_server_url("https://fota.lan") == "https://fota.lan"
    assert check_server_url("https://fota.lan:8443/prefix") == "https://fota.lan:8443/prefix"


def test_a_file_that_is_not_a_serial_port_is_named(tmp_path: Path) -> None:
    with pytest.raises(FotaError, match=r"^Failed to open /dev/null: not a serial port \(a character device "
                                        r"that is not a terminal\)"):
        deploy("/dev/null", runner=Tools(), build_dir=tmp_path)
    with pytest.raises(FotaError, match=r"^Failed to open .*: not a serial port \(a directory\)"):
        run_update(str(tmp_path))


def test_esptool_s_explanation_is_kept(tmp_path: Path) -> None:
    fw = tmp_path / "micropython.bin"
    fw.write_bytes(b"\xe9" + bytes(100))
    err = ("esptool v5.0.0\nConnecting...\n"
           "A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
           "(Could not configure port: (25, 'Inappropriate ioctl for device'))\n")
    with pytest.raises(FotaError) as e:
        deploy(DEVICE, fw, runner=Tools({"erase-flash": Proc(2, "", err)}), build_dir=tmp_path)
    assert ("A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist. "
            "(Could not configure port: (25, 'Inappropriate ioctl for device'))") in str(e.value)


def _silent_mpremote(tmp_path: Path) -> list[str]:
    script = tmp_path / "silent_mpremote.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        time.sleep(60)      # a port with nothing behind it: mpremote waits for a REPL
    """))
    return [sys.executable, str(script)]


def test_update_on_a_silent_port_fails_at_once_not_at_the_timeout(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(FotaError, match=r"no answer within 1 s \(is the ESP32 on this port, powered and "
                                        r"running MicroPython\?"):
        run_update(DEVICE, lambda _l: None, timeout_s=600, tool=_silent_mpremote(tmp_path),
                   answer_timeout_s=1)
    assert time.monotonic() - t0 < 10


def test_update_ends_with_a_reset_so_main_py_polls_again(tmp_path: Path) -> None:
    script = tmp_path / "argv_mpremote.py"
    script.write_text(textwrap.dedent("""
        import sys
        print("argv " + repr(sys.argv[1:]))
        print("fota: result none 1.0.0 slot A in 0.4 s: up to date")
    """))
    r = run_update(DEVICE, lambda _l: None, tool=[sys.executable, str(script)])
    argv = ast.literal_eval(r.lines[0][5:])
    assert argv[2] == "exec" and "updater.update(" in argv[3]
    assert argv[4:] == ["+", "reset", "+", "sleep", "1.5"]
