"""The whole product on one machine: local S3, update server, STM32 twin, virtual ESP32 with the bridge.

    with Lab(Path("build/demo")) as lab:         # a private state folder
        lab.flash(Path("build/demo/v1.0.0"))      # flash-stm32 --sim
        lab.start()                               # S3, server, twin + virtual ESP32; deploys the bridge
        lab.release(Path("build/demo/v1.1.0")); lab.sync()
        outcome = lab.update()                    # the same call as `invoke update --device`
        lab.led(), lab.journal(), lab.device()    # what the STM32 and the server now say

Everything goes through the product's own code paths: releases with stm32_fota.release into the
embedded S3 endpoint (moto, fota_lab.locals3), the server as `invoke serve` runs it (its own
process, fota_server.serve), the bridge deployed and run with mpremote over the virtual ESP32's pty
(stm32_fota.esp32). Nothing of a user's .fota/ or build/ is touched: every file lives under the
folder given. ``stop`` (also on an exception inside the ``with``) ends every process it started.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fota_formats import journal
from fota_formats.config import FotaConfig, ServerConfig
from fota_formats.errors import FotaError
from fota_formats.spec import LAYOUT, PROTOCOL
from stm32_fota.esp32 import UpdateOutcome, deploy, run_update
from stm32_fota.project import current
from stm32_fota.release import ReleaseResult, Reporter, SilentReporter, release

from . import labtls, locals3
from .flashing import flash_sim

SERVER_START_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0
BOOT_MS = 400.0               # the twin's bootloader + application start take ~100 ms of virtual time
WIFI = {"wifi_ssid": "fota-lab", "wifi_password": "fota-lab-pw"}
PR_SET_PDEATHSIG = 1



def _die_with_parent() -> None:
    """In the server's child process before exec: Linux kills it when the lab's process dies
    (even by SIGKILL), so that no server outlives a lab."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class LabError(FotaError):
    """A part of the lab could not be started, reached or stopped."""


@dataclass
class Journal:
    """The newest valid record of the metadata journal (sector 11), decoded."""

    seq: int
    active_slot: str           # "A" / "B"
    state: str                 # "confirmed" / "trial"
    attempts_left: int
    last_result: str           # RESULT_* name without the prefix, e.g. "CONFIRMED"
    version: str


@dataclass
class LinkTimes:
    """Twin virtual time of the last BEGIN frame and of the OK answer to ACTIVATE (picoseconds)."""

    begin_ps: int | None = None
    activated_ps: int | None = None
    image_size: int = 0
    slot: int = -1
    blank_sectors: frozenset[int] = frozenset()   # sectors of the target slot already erased at BEGIN

    @property
    def seconds(self) -> float | None:
        if self.begin_ps is None or self.activated_ps is None or self.activated_ps < self.begin_ps:
            return None
        return (self.activated_ps - self.begin_ps) / 1e12


def touched_sectors(image_size: int, slot: int) -> list[int]:
    """Numbers of the sectors of ``slot`` that an image of ``image_size`` bytes occupies."""
    region = LAYOUT.slot_region(slot)
    return [s.number for s in LAYOUT.sectors_of(region) if s.base < region.base + image_size]


def flash_lower_bound_s(image_size: int, slot: int, blank: frozenset[int] = frozenset()) -> float:
    """Erase of every sector the image touches in the slot + 16 us per 32-bit word (DS8626 typical,
    the figures the twin models; REFERENCE.md "Lower bound"). Sectors in ``blank`` were erased
    already: the agent skips them, so they count no erase time."""
    from stm32_twin.flash import ERASE_MS, PROGRAM_US

    region = LAYOUT.slot_region(slot)
    erase_ms = 0.0
    for sector in LAYOUT.sectors_of(region):
        if sector.number in touched_sectors(image_size, slot) and sector.number not in blank:
            erase_ms += ERASE_MS[sector.size][2][0]   # x32 parallelism, typical
    words = (image_size + 3) // 4
    return erase_ms / 1000.0 + words * PROGRAM_US["typical"] / 1e6


def decode_journal(sector: bytes) -> Journal | None:
    """The newest valid record of a journal sector, decoded for people, or None (empty journal)."""
    rec = journal.newest(sector)
    if rec is None:
        return None
    return Journal(rec.seq, rec.slot_name, rec.state_name, rec.attempts_left, rec.result_name,
                   rec.version_text)


def _twin_peer_class() -> type:
    from esp32_twin.twin_peer import TwinPeer

    begin, activate = PROTOCOL.tables["commands"]["BEGIN"], PROTOCOL.tables["commands"]["ACTIVATE"]
    flag, ok = PROTOCOL.constants["RESPONSE_FLAG"], PROTOCOL.tables["status"]["OK"]
    marker = PROTOCOL.constants["FRAME_MARKER"].to_bytes(2, "little")
    begin_struct = PROTOCOL.structs["begin_req"]
    hdr = PROTOCOL.constants["FRAME_HEADER_SIZE"]

    class TimedTwinPeer(TwinPeer):  # type: ignore[misc]
        """TwinPeer that notes when BEGIN goes out and when ACTIVATE is answered OK (link timing),
        and lets a test act before a given transaction (``before_transfer``)."""

        def __init__(self, board: Any) -> None:
            super().__init__(board)
            self.times = LinkTimes()
            self.before_transfer: Callable[[bytes], None] | None = None
            self.power_returns = False    # after a power cut, power the STM32 at the ESP32's next look

        def _power_back(self) -> None:
            if self.power_returns and not self.board.powered:
                self.board.power_on()

        def pin_read(self, gpio: int) -> int | None:
            self._power_back()
            return super().pin_read(gpio)  # type: ignore[no-any-return]

        def advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
            self._power_back()
            return super().advance(ms, until)  # type: ignore[no-any-return]

        def _blank(self, size: int, slot: int) -> frozenset[int]:
            if slot not in (0, 1):
                return frozenset()
            out = set()
            for n in touched_sectors(size, slot):
                sec = LAYOUT.sectors[n]
                if self.board.flash_bytes(sec.base, sec.size).count(0xFF) == sec.size:
                    out.add(n)
            return frozenset(out)

        def spi_transfer(self, tx: bytes, baudrate: int) -> bytes:
            self._power_back()
            if self.before_transfer is not None:
                self.before_transfer(tx)
            if tx[:2] == marker and tx[2] == begin:
                self.times = LinkTimes(begin_ps=int(self.board.now_ps))
                if len(tx) >= hdr + begin_struct.size:
                    fields = begin_struct.unpack(tx, hdr)
                    self.times.image_size = int(fields["image_size"])
                    self.times.slot = int(fields["target_slot"])
                    self.times.blank_sectors = self._blank(self.times.image_size, self.times.slot)
            rx = super().spi_transfer(tx, baudrate)
            answered = rx[:2] == marker and rx[2] == activate | flag and rx[3] == ok
            if answered and self.times.activated_ps is None:
                self.times.activated_ps = int(self.board.now_ps)
            return rx

    return TimedTwinPeer


@dataclass
class Lab:
    """See the module docstring. ``on_uart`` / ``on_led`` see the STM32's UART lines and LED changes
    as they happen (called from the virtual ESP32's thread: keep them short)."""

    root: Path
    on_uart: Callable[[str], None] | None = None
    on_led: Callable[[str, bool], None] | None = None
    server_log_level: str = "warning"
    tls: bool = True           # the server serves HTTPS with a throwaway CA, which the bridge gets
    server_env: dict[str, str] = field(default_factory=dict)   # more environment for the server
    cfg: FotaConfig = field(init=False)
    board: Any = None
    esp: Any = None
    peer: Any = None
    server_proc: subprocess.Popen[bytes] | None = None
    s3: locals3.LocalS3Info | None = None
    last_led: str = ""

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        state = self.root / "state"
        # both roles' tokens, fresh for each lab: the bridge gets the device token, api() the operator's
        server = ServerConfig(port=locals3.free_port(), sync_interval_s=3600.0,
                              token=secrets.token_urlsafe(18), operator_token=secrets.token_urlsafe(18))
        self.cfg = FotaConfig(root=self.root, state_dir=state, firmware_dir=state / "firmware",
                              db_path=state / "server.db", server=server)

    # -- paths and addresses ---------------------------------------------------------------------
    @property
    def flash_file(self) -> Path:
        return self.root / "stm32-flash.bin"

    @property
    def server_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.cfg.server.port}"

    @property
    def ca_cert(self) -> Path | None:
        """The CA of the server's certificate (made with the lab's state), None without TLS."""
        return labtls.lab_certs(self.cfg.state_dir).ca_cert if self.tls else None

    @property
    def esp_fs(self) -> Path:
        return self.root / "esp32-fs"

    # -- life cycle ------------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Forget the previous run: S3 mirror, server registry and firmware, ESP32 files, flash."""
        locals3.stop(self.cfg)
        for p in (self.cfg.state_dir, self.esp_fs):
            shutil.rmtree(p, ignore_errors=True)
        self.flash_file.unlink(missing_ok=True)

    def flash(self, build_dir: Path, log: Callable[[str], None] = print) -> None:
        """`invoke flash-stm32 --sim`: bootloader + Slot A into the twin's flash file."""
        flash_sim(build_dir, self.flash_file, log=log)

    def start_s3(self) -> locals3.LocalS3Info:
        self.s3 = locals3.start(self.cfg)
        return self.s3

    def start_server(self) -> None:
        """The server in its own process, as `invoke serve` runs it, configured by environment."""
        if self.server_proc is not None and self.server_proc.poll() is None:
            return
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOTA_")}
        env.update(FOTA_STATE_DIR=str(self.cfg.state_dir), FOTA_FIRMWARE_DIR=str(self.cfg.firmware_dir),
                   FOTA_DB=str(self.cfg.db_path), FOTA_SERVER_HOST=self.cfg.server.host,
                   FOTA_SERVER_PORT=str(self.cfg.server.port),
                   FOTA_SYNC_INTERVAL=str(self.cfg.server.sync_interval_s), PYTHONUNBUFFERED="1",
                   FOTA_SERVER_TOKEN=self.cfg.server.token or "",
                   FOTA_OPERATOR_TOKEN=self.cfg.server.operator_token or "")
        if self.tls:
            env.update(labtls.server_env(labtls.lab_certs(self.cfg.state_dir)))
        env.update(self.server_env)
        log = open(self.cfg.state_dir / "server.log", "ab")  # noqa: SIM115 (the child holds it)
        try:
            argv = [sys.executable, "-m", "fota_server", "--log-level", self.server_log_level]
            self.server_proc = subprocess.Popen(argv,
                                                cwd=self.cfg.state_dir, env=env, stdout=log, stderr=log,
                                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        except OSError as e:
            raise LabError(f"Failed to start the update server: {e}") from None
        finally:
            log.close()
        try:
            locals3.wait_port(self.cfg.server.port, self.server_proc, SERVER_START_TIMEOUT_S)
        except FotaError as e:
            log_path = self.cfg.state_dir / "server.log"
            raise LabError(f"Failed to start the update server: {e} (log: {log_path})") from None

    def stop_server(self) -> None:
        p, self.server_proc = self.server_proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def start_devices(self) -> None:
        """The STM32 twin on the flash file, powered, and the virtual ESP32 wired to it."""
        from esp32_twin import VirtualEsp32, WifiConfig
        from stm32_twin import Stm32Twin

        if not self.flash_file.is_file():
            raise LabError(f"Failed to start the STM32 twin: {self.flash_file} does not exist "
                           "(flash it first)")
        self.board = Stm32Twin(self.flash_file)
        self.board.listeners.append(self._on_event)
        self.board.power_on()
        self.board.run(ms=BOOT_MS)
        self.peer = _twin_peer_class()(self.board)
        self.esp = VirtualEsp32(self.peer, board=self.board, fs_dir=self.esp_fs,
                                wifi=WifiConfig(ssid=WIFI["wifi_ssid"], password=WIFI["wifi_password"]),
                                log_path=self.root / "vesp32-node.log")
        self.esp.start()

    def deploy_bridge(self, server_url: str = "", ca: list[Path] | None = None) -> str:
        """`invoke deploy-esp32`: the compiled bridge, its config.json (with the device token) and
        (HTTPS) the CA onto the virtual ESP32; ``server_url``: what the bridge should use instead of
        the server's own address; ``ca``: the CA certificates to deploy instead of the server's CA."""
        if ca is None:
            ca = [self.ca_cert] if self.ca_cert else []
        r = deploy(self.esp.port, None, {**WIFI, "server": server_url or self.server_url,
                                          "token": self.cfg.server.token or ""}, ca_files=ca)
        return r.check

    def start(self) -> None:
        """S3, server, devices, bridge."""
        self.start_s3()
        self.start_server()
        self.start_devices()
        self.deploy_bridge()

    def stop(self) -> None:
        """End everything this lab started (each step even when an earlier one fails)."""
        errors = []
        for step in (self._stop_esp, self.stop_server, lambda: locals3.stop(self.cfg), self._close_board):
            try:
                step()
            except Exception as e:  # keep stopping the rest
                errors.append(str(e))
        if errors:
            raise LabError("Failed to stop the lab cleanly: " + "; ".join(errors))

    def _stop_esp(self) -> None:
        if self.esp is not None:
            self.esp.stop()
            self.esp = None

    def _close_board(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the product's steps ---------------------------------------------------------------------
    def store(self) -> Any:
        return locals3.open_store(self.cfg)

    def release(self, build_dir: Path, reporter: Reporter | None = None,
                force: bool = False) -> ReleaseResult:
        return release(self.store(), build_dir, force=force, root=current().root,
                       reporter=reporter or SilentReporter())

    def api(self, method: str, path: str, body: dict[str, Any] | None = None,
            answers: tuple[int, ...] = ()) -> Any:
        """An operator request to the server (with the operator token); the JSON reply. An HTTP error
        is a LabError, except the statuses in ``answers``, whose JSON body is returned."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.cfg.server.operator_token}"}
        if data:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.server_url + "/api/v1" + path, data=data, method=method,
                                     headers=headers)
        try:
            ctx = labtls.client_context(self.ca_cert) if self.tls and self.ca_cert else None
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S, context=ctx) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read()
            if e.code in answers:
                return json.loads(text)
            raise LabError(f"Failed to {method} {path}: HTTP {e.code} {text[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise LabError(f"Failed to {method} {path}: {e}") from None

    def sync(self) -> dict[str, Any]:
        """POST /api/v1/sync: the server fetches the bucket's newest release now. A failed sync
        (502 / 503) is returned like a successful one: its ``status`` and ``message`` say why."""
        result: dict[str, Any] = self.api("POST", "/sync", answers=(502, 503))
        return result

    def update(self, on_line: Callable[[str], None] = lambda _: None,
               timeout_s: float = 300) -> UpdateOutcome:
        """`invoke update --device <pty>`: one update cycle of the bridge."""
        return run_update(self.esp.port, on_line, timeout_s=timeout_s)

    # -- what the devices and the server say ------------------------------------------------------
    def _on_event(self, ev: Any) -> None:
        if ev.kind == "uart" and self.on_uart is not None:
            self.on_uart(str(ev.data))
        elif ev.kind == "led":
            colour, on = ev.data["led"], bool(ev.data["on"])
            if on and colour != self.last_led:
                self.last_led = colour
                if self.on_led is not None:
                    self.on_led(colour, on)
            elif on:
                self.last_led = colour

    def led(self) -> str:
        """The colour of the LED that blinks now (the running slot: A green, B orange)."""
        return self.last_led

    @contextlib.contextmanager
    def locked(self) -> Any:
        """Hold the twin still (the virtual ESP32's thread free-runs it while the REPL is idle)."""
        lock = self.esp.lock if self.esp is not None else threading.RLock()
        with lock:
            yield self.board

    def journal(self) -> Journal | None:
        meta = LAYOUT.region("metadata")
        with self.locked() as board:
            return decode_journal(board.flash_bytes(meta.base, meta.size))

    def uart_lines(self) -> list[str]:
        with self.locked() as board:
            return list(board.uart_lines)

    def virtual_s(self) -> float:
        with self.locked() as board:
            return float(board.now_us) / 1e6

    def device_id(self) -> str:
        """The STM32's unique ID as the bridge reports it (hex of the 96-bit UID)."""
        with self.locked() as board:
            return bytes(board.uid).hex()

    def device(self) -> dict[str, Any]:
        """The server's record of this device, with its update history (GET /devices/{id})."""
        result: dict[str, Any] = self.api("GET", f"/devices/{self.device_id()}")
        return result

    def updates(self) -> list[dict[str, Any]]:
        """The server's update records of this device, newest first (empty before its first check-in)."""
        result: list[dict[str, Any]] = []
        path: str | None = f"/updates?device_id={self.device_id()}&limit=1000"
        while path is not None:
            page = self.api("GET", path)
            result += page["items"]
            path = page["next"].removeprefix("/api/v1") if page["next"] else None
        return result

    def wait_for(self, what: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if what():
                return True
            time.sleep(step_s)
        return what()
