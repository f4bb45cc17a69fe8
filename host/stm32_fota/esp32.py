"""Host side of the ESP32 bridge: flash MicroPython, deploy the bridge, run an update cycle.

    >>> from stm32_fota.esp32 import deploy, run_update
    >>> deploy("/dev/ttyUSB0", firmware=None, config={"server": "http://10.0.0.2:8000"})  # doctest: +SKIP
    >>> outcome = run_update("/dev/ttyUSB0", on_line=print)                                # doctest: +SKIP
    >>> outcome.outcome, outcome.version, outcome.slot                                    # doctest: +SKIP
    ('confirmed', '1.1.0', 'B')

Everything goes through the ordinary tools, so that a real board and the virtual ESP32 (a pty)
behave the same: esptool for the MicroPython firmware, mpremote for files and for running code.
Their failures are translated once, here, into :class:`Esp32Error` messages of the form
"Failed to <operation> on <port>: <reason>" with a hint (port missing, busy, or not answering).
The bridge's console lines (docs/bridge.md) are parsed by :func:`parse_line`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from fota_formats.fleet import is_group

from .certs import CertError, CertInfo, read_cert_info
from .errors import FotaError
from .mpy import compile_bridge

FIRMWARE_OFFSET = 0x1000         # ESP32 (not S2/S3/C3): the bootloader image starts at 0x1000
MPREMOTE_TIMEOUT_S = 120
ESPTOOL_TIMEOUT_S = 300
BRIDGE_MODULES = ("fota_const", "fotalink", "config", "net", "hw", "updater")
CONFIG_KEYS = ("wifi_ssid", "wifi_password", "server", "token", "group")
CA_FILE = "ca.pem"               # the bridge's default `ca_file` (esp32_mpy/config.py)
CA_BUNDLE_MAX = 16 * 1024        # the bridge reads the whole file into RAM at each update cycle
NEW_CONFIG = "fota_new.json"     # the settings of one deploy, merged into config.json on the device
ANSWER_TIMEOUT_S = 30            # `update`: the bridge's first line comes within this (mpremote + INFO)
# After `mpremote reset` the board boots (ROM, then MicroPython: about a second on an ESP32); bytes
# a next session sends meanwhile are lost, so the session that resets waits that long before it ends.
RESET = ("+", "reset", "+", "sleep", "1.5")


class Esp32Error(FotaError):
    """A step against the ESP32 failed (port, esptool, mpremote, or the bridge itself)."""


# -- console lines of the bridge -------------------------------------------------------------------

_STEP = re.compile(r"^fota: step (\S+)(?: (.*))?$")
_PROGRESS = re.compile(r"^fota: progress (\d+)% (\d+)/(\d+)$")
_RESULT = re.compile(r"^fota: result (\w+) (\S+) slot (\S) in ([0-9.]+) s(?:: (.*))?$")


@dataclass(frozen=True)
class Line:
    kind: str                  # "step", "progress", "result"
    name: str = ""             # step name, or the outcome of a result
    detail: str = ""           # step detail, or the reason of a result
    percent: int = 0
    done: int = 0
    size: int = 0
    version: str = ""
    slot: str = ""
    seconds: float = 0.0


def parse_line(text: str) -> Line | None:
    """One console line of the bridge, or None when it is not a status line."""
    text = text.strip()
    if m := _STEP.match(text):
        return Line("step", m[1], m[2] or "")
    if m := _PROGRESS.match(text):
        return Line("progress", percent=int(m[1]), done=int(m[2]), size=int(m[3]))
    if m := _RESULT.match(text):
        return Line("result", m[1], m[5] or "", version=m[2], slot=m[3], seconds=float(m[4]))
    return None


@dataclass
class UpdateOutcome:
    outcome: str               # confirmed, reverted, failed, none
    version: str
    slot: str
    seconds: float
    reason: str
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in ("confirmed", "none")


class ProgressBar:
    """Renders the bridge's lines on a terminal: steps as lines, progress as one redrawn bar."""

    def __init__(self, out: IO[str], width: int = 40) -> None:
        self.out = out
        self.width = width
        self.open = False

    def __call__(self, text: str) -> None:
        line = parse_line(text)
        if line is not None and line.kind == "progress":
            filled = self.width * line.percent // 100
            bar = "#" * filled + "-" * (self.width - filled)
            self.out.write(f"\r  [{bar}] {line.percent:3d}% {line.done}/{line.size} bytes")
            self.open = True
        else:
            if self.open:
                self.out.write("\n")
                self.open = False
            self.out.write(text.rstrip() + "\n")
        self.out.flush()


# -- running the tools -----------------------------------------------------------------------------

@dataclass
class Proc:
    code: int
    out: str
    err: str


Runner = Callable[[Sequence[str], float], Proc]


def run_tool(cmd: Sequence[str], timeout_s: float) -> Proc:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return Proc(-1, "", f"no answer within {timeout_s:.0f} s")
    except OSError as e:
        return Proc(-1, "", str(e))
    return Proc(p.returncode, p.stdout, p.stderr)


MPREMOTE: tuple[str, ...] = (sys.executable, "-m", "mpremote")


def mpremote_cmd(device: str, *args: str, tool: Sequence[str] = MPREMOTE) -> list[str]:
    # No `resume`: mpremote's soft reset drops modules main.py imported before they were replaced.
    return [*tool, "connect", device, *args]


def _reason(device: str, proc: Proc) -> str:
    """mpremote's / esptool's failure as one sentence with a hint."""
    text = [x.strip() for x in (proc.err.strip() or proc.out.strip()).splitlines() if x.strip()]
    last = text[-1] if text else f"exit code {proc.code}"
    # esptool says what failed on a line of its own ("A fatal error occurred: Could not open
    # /dev/ttyUSB0, the port is busy or doesn't exist.") and the OS error after it: keep both.
    fatal = next((x for x in text if x.lower().startswith(("a fatal error occurred", "error:"))), "")
    if fatal and fatal != last:
        last = f"{fatal} {last}"
    low = (proc.err + proc.out).lower()
    if "in use" in low or "resource busy" in low or "could not exclusively lock" in low:
        return f"{last} (the port is busy: close other programs using {device}, e.g. a serial monitor)"
    if "no such file" in low or "failed to access" in low or "could not open port" in low:
        return f"{last} (is the board connected? `mpremote connect list` shows the ports)"
    if "raw repl" in low or "no answer" in low or "timed out" in low or "timeout" in low:
        return f"{last} (the device does not answer: press its reset button or re-flash MicroPython)"
    return last


def check_port(device: str) -> None:
    """A serial device path must exist and be a terminal device, a serial port or a pty (COM ports
    and rfc2217:// URLs are left to the tools)."""
    if not device.startswith("/"):
        return
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        raise Esp32Error(f"Failed to open {device}: no such port (is the board connected? "
                         "`mpremote connect list` shows the ports)") from None
    except OSError as e:
        raise Esp32Error(f"Failed to open {device}: {e.strerror or e}") from None
    if not stat.S_ISCHR(mode):
        raise Esp32Error(f"Failed to open {device}: not a serial port (a {_kind(mode)}); "
                         "`mpremote connect list` shows the ports")
    if os.name == "posix":
        try:
            fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return      # busy, or no permission: the tools say which
        try:
            tty = os.isatty(fd)
        finally:
            os.close(fd)
        if not tty:
            raise Esp32Error(f"Failed to open {device}: not a serial port (a character device that is "
                             "not a terminal); `mpremote connect list` shows the ports")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "regular file"
    return "file that is not a device"


def check_server_url(url: str) -> str:
    """The update server URL as the bridge needs it (http:// or https://, a host, a valid port);
    returns it without a trailing slash, or raises Esp32Error saying what is wrong."""
    example = "e.g. http://192.168.1.10:8080 or https://192.168.1.10:8443"
    if "://" not in url:
        raise Esp32Error(f"Failed to use the server URL {url!r}: no scheme; write http://{url} or "
                         f"https://{url} ({example})")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Esp32Error(f"Failed to use the server URL {url!r}: the scheme must be http:// or https://, "
                         f"not {parts.scheme}:// ({example})")
    try:
        port = parts.port
    except ValueError:
        raise Esp32Error(f"Failed to use the server URL {url!r}: the port must be a number from 1 to 65535 "
                         f"({example})") from None
    if not parts.hostname:
        raise Esp32Error(f"Failed to use the server URL {url!r}: no host ({example})")
    if port == 0:
        raise Esp32Error(f"Failed to use the server URL {url!r}: port 0 is not a port ({example})")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise Esp32Error(f"Failed to use the server URL {url!r}: only scheme, host, port and a path "
                         f"prefix are allowed ({example})")
    return url.rstrip("/")


def _run(device: str, what: str, cmd: Sequence[str], runner: Runner, timeout_s: float) -> Proc:
    proc = runner(cmd, timeout_s)
    if proc.code != 0:
        raise Esp32Error(f"Failed to {what} on {device}: {_reason(device, proc)}")
    return proc


def flash_micropython(device: str, firmware: Path, runner: Runner = run_tool) -> None:
    """esptool: erase the whole flash, then write the MicroPython firmware at 0x1000 (esptool 5's
    command names: erase-flash, write-flash)."""
    if not firmware.is_file():
        raise Esp32Error(f"Failed to flash MicroPython: {firmware} does not exist")
    esptool = [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", device]
    _run(device, "erase the flash", [*esptool, "erase-flash"], runner, ESPTOOL_TIMEOUT_S)
    _run(device, "write MicroPython", [*esptool, "--baud", "460800", "write-flash", "-z",
                                       hex(FIRMWARE_OFFSET), str(firmware)], runner, ESPTOOL_TIMEOUT_S)


@dataclass
class DeployResult:
    files: list[str]
    config_written: bool
    check: str                                          # what the device holds, in words
    ca: list[CertInfo] = field(default_factory=list)   # the certificates written to ca.pem
    settings: dict[str, object] = field(default_factory=dict)  # the probe's answer (no secrets)


# Runs on the device after the copy: the settings of this deploy (NEW_CONFIG) go over what
# config.json holds, so that `--server X` alone keeps the Wi-Fi settings and the token.
MERGE = ("import json, os\ntry:\n  with open('config.json') as f:\n    c = json.load(f)\n"
         "except (OSError, ValueError):\n  c = {}\n"
         f"with open('{NEW_CONFIG}') as f:\n  c.update(json.load(f))\n"
         "with open('config.json', 'w') as f:\n  json.dump(c, f)\n"
         f"os.remove('{NEW_CONFIG}')")

# The import check: the bridge's modules import, and what config.json holds (no secrets).
PROBE = ("import " + ", ".join(BRIDGE_MODULES) + "\nimport os, json\ncfg = config.load()\nca = False\n"
         "try:\n  os.stat(cfg['ca_file']); ca = True\nexcept OSError:\n  pass\n"
         "print('fota: bridge ok ' + json.dumps({'server': cfg['server'], 'wifi': cfg['wifi_ssid'], "
         "'password': bool(cfg['wifi_password']), 'token': bool(cfg['token']), "
         "'ca_file': cfg['ca_file'], 'ca': ca, 'settings': len(cfg)}))")


def describe_settings(doc: dict[str, object]) -> str:
    """The probe's answer in words: server, Wi-Fi, token, CA file."""
    server = doc.get("server") or "none (set one with --server)"
    if doc.get("wifi"):
        wifi = f"{doc['wifi']}" + ("" if doc.get("password") else " (no password)")
    else:
        wifi = "none (the bridge will say `no Wi-Fi configured`; set --wifi and --password)"
    token = "set" if doc.get("token") else "none"
    ca = f"{doc.get('ca_file')} " + ("present" if doc.get("ca") else "absent")
    return f"server {server}; Wi-Fi {wifi}; token {token}; CA file {ca}"


def ca_bundle(paths: Sequence[Path], now: float | None = None) -> tuple[str, list[CertInfo]]:
    """The CA certificates of ``paths`` as one PEM text for the bridge's ca.pem, after checking
    each: a PEM certificate, a CA (not a server's own certificate), not expired."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem: list[str] = []
    infos: list[CertInfo] = []
    when = datetime.datetime.now(datetime.UTC) if now is None else datetime.datetime.fromtimestamp(
        now, datetime.UTC)
    for path in paths:
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as e:
            raise Esp32Error(f"Failed to read the CA certificate {path}: {e.strerror or e}") from None
        except ValueError as e:
            raise Esp32Error(f"Failed to read the CA certificate {path}: not a PEM certificate "
                             f"({e})") from None
        for cert, info in zip(certs, read_cert_info(path), strict=True):
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                raise Esp32Error(f"Failed to use {path} as a CA certificate: {info.subject} is not a CA (a "
                                 "server's own certificate?); pass the CA that signed it, e.g. "
                                 "<state dir>/tls/ca.pem")
            if info.not_after <= when:
                raise Esp32Error(f"Failed to use {path} as a CA certificate: {info.subject} expired on "
                                 f"{info.not_after:%Y-%m-%d}")
            pem.append(cert.public_bytes(Encoding.PEM).decode("ascii"))
            infos.append(info)
    text = "".join(pem)
    if len(text) > CA_BUNDLE_MAX:
        raise Esp32Error(f"Failed to deploy the CA certificates: {len(text)} bytes of PEM, more than "
                         f"{CA_BUNDLE_MAX}; the bridge reads them into RAM, so give only the CAs it needs "
                         "(the server's CA, and the S3 root for direct downloads)")
    return text, infos


def deploy(device: str, firmware: Path | None = None, config: dict[str, str] | None = None,
           runner: Runner = run_tool, build_dir: Path | None = None,
           ca_files: Sequence[Path] = ()) -> DeployResult:
    """Flash MicroPython (``firmware``), copy the compiled bridge, config.json and the CA
    certificates (``ca_files``, bundled into ca.pem), check the import.

    ``config``: the settings to change in config.json (CONFIG_KEYS; empty values are left out): they
    are merged into what the device holds, so ``{"server": ...}`` alone keeps the Wi-Fi settings and
    the token. The server URL is checked first (check_server_url). The board is reset at the end,
    so main.py starts polling.
    ``ca_files``: none keeps the device's ca.pem. A bridge whose server URL is https:// and that has
    no CA certificate is refused (it could not reach its server).
    """
    check_port(device)
    config = {k: v for k, v in (config or {}).items() if v}
    if "server" in config:
        config["server"] = check_server_url(str(config["server"]))
    if "group" in config and not is_group(str(config["group"])):
        raise Esp32Error(f"group {str(config['group'])[:70]!r} is not a group name: letters, digits, '.', "
                         "'_', '-', starting with a letter or digit, at most 64 characters")
    try:
        ca_text, ca_infos = ca_bundle(ca_files) if ca_files else ("", [])
    except CertError as e:
        raise Esp32Error(str(e)) from None
    if firmware is not None:
        flash_micropython(device, firmware, runner)
    compiled = compile_bridge(build_dir) if build_dir else compile_bridge()
    args: list[str] = []
    # A stale .py of a module would shadow its .mpy (MicroPython imports the .py first).
    stale = [m + ".py" for m in BRIDGE_MODULES]
    remove = f"import os\nfor n in {tuple(stale)!r}:\n  try:\n    os.remove(n)\n  except OSError:\n    pass"
    args += ["exec", remove]
    for f in compiled.files:
        args += ["+", "fs", "cp", str(f), ":" + f.name]
    written = any(config.get(k) for k in CONFIG_KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        if written:
            path = Path(tmp) / NEW_CONFIG
            path.write_text(json.dumps(config, indent=1))
            args += ["+", "fs", "cp", str(path), ":" + NEW_CONFIG, "+", "exec", MERGE]
        if ca_text:
            ca_path = Path(tmp) / CA_FILE
            ca_path.write_text(ca_text, encoding="ascii")
            target = str(config.get("ca_file") or CA_FILE)
            args += ["+", "fs", "cp", str(ca_path), ":" + target]
        _run(device, "copy the bridge", mpremote_cmd(device, *args), runner, MPREMOTE_TIMEOUT_S)
    # The import check also says whether an https:// server URL has its CA certificates. The hard
    # reset after it starts main.py: the bridge polls from now on (an mpremote session leaves the
    # board at its REPL otherwise).
    proc = _run(device, "import the bridge", mpremote_cmd(device, "exec", PROBE, *RESET), runner,
                MPREMOTE_TIMEOUT_S)
    line = next((x.strip() for x in proc.out.splitlines() if x.startswith("fota: bridge ok ")), None)
    if line is None:
        raise Esp32Error(f"Failed to import the bridge on {device}: "
                         f"{(proc.out.strip().splitlines() or ['no output'])[-1]}")
    try:
        doc = json.loads(line[len("fota: bridge ok "):])
    except ValueError:
        raise Esp32Error(f"Failed to import the bridge on {device}: unexpected answer {line[:80]}") from None
    if str(doc.get("server", "")).startswith("https://") and not doc.get("ca"):
        raise Esp32Error(f"Failed to deploy the bridge on {device}: its server URL is https:// but no CA "
                         "certificate is on the device; pass --ca with the CA of the server's certificate "
                         "(`invoke certs` wrote it to <state dir>/tls/ca.pem)")
    return DeployResult([f.name for f in compiled.files], written, describe_settings(doc), ca_infos, doc)


def run_update(device: str, on_line: Callable[[str], None] = print, timeout_s: float = 600,
               config_path: str = "config.json", tool: Sequence[str] = MPREMOTE,
               answer_timeout_s: float = ANSWER_TIMEOUT_S) -> UpdateOutcome:
    """Run one update cycle on the bridge through mpremote (``tool``), streaming its lines to
    ``on_line``; returns the cycle's result line. Nothing at all within ``answer_timeout_s`` (no
    board behind the port) fails then, not at ``timeout_s``. The board is reset afterwards, so its
    main.py polls again (the mpremote session stopped it)."""
    check_port(device)
    cmd = mpremote_cmd(device, "exec", f"import updater\nupdater.update({config_path!r})", *RESET, tool=tool)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    lines: list[str] = []
    result: Line | None = None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)
    except OSError as e:
        raise Esp32Error(f"Failed to start mpremote: {e}") from None
    # A device that goes silent must not hang the host: stop mpremote at the deadline.
    expired = threading.Event()
    silent = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    def no_answer() -> None:
        silent.set()
        proc.kill()

    timer = threading.Timer(timeout_s, expire)
    first = threading.Timer(answer_timeout_s, no_answer)
    timer.start()
    first.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for raw in proc.stdout:
            first.cancel()
            text = raw.rstrip("\r\n")
            lines.append(text)
            on_line(text)
            parsed = parse_line(text)
            if parsed is not None and parsed.kind == "result":
                result = parsed
        err = proc.stderr.read()
        code = proc.wait()
    finally:
        timer.cancel()
        first.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if result is None:
        if silent.is_set():
            raise Esp32Error(f"Failed to run the update on {device}: no answer within "
                             f"{answer_timeout_s:.0f} s (is the ESP32 on this port, powered and running "
                             "MicroPython? `mpremote connect list` shows the ports; `invoke deploy-esp32` "
                             "installs the bridge)")
        if expired.is_set():
            raise Esp32Error(f"Failed to run the update on {device}: no result within {timeout_s:.0f} s")
        if code != 0:
            raise Esp32Error(f"Failed to run the update on {device}: {_reason(device, Proc(code, '', err))}")
        tail = next((x for x in reversed(lines) if x.strip()), "no output")
        raise Esp32Error(f"Failed to run the update on {device}: the bridge printed no result line "
                         f"(last line: {tail})")
    return UpdateOutcome(result.name, result.version, result.slot, result.seconds, result.detail, lines)
