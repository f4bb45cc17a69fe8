"""The whole product on one machine: local S3, update server, STM32 twin, virtual ESP32 with the bridge.

    with Lab(Path("build/demo")) as lab:         # a private state folder
        lab.flash(Path("build/demo/v1.0.0"))      # flash-stm32 --sim
        lab.start()                               # S3, server, twin + virtual ESP32; deploys the bridge
        lab.release(Path("build/demo/v1.1.0")); lab.sync()
        outcome = lab.update()                    # the same call as `invoke update --device`
        lab.led(), lab.journal(), lab.device()    # what the STM32 and the server now say

Everything goes through the product's own code paths: releases with stm32_fota.release into the
embedded S3 endpoint (moto, fota_lab.locals3), the server as `invoke serve` runs it (its own
process, fota_lab.processes; HTTPS with a throwaway CA unless ``tls=False``, fota_lab.labtls), the
bridge deployed and run with mpremote over the virtual ESP32's pty (stm32_fota.esp32). Nothing of
a user's .fota/ or build/ is touched: every file lives under the folder given. ``stop`` (also on
an exception inside the ``with``) ends every process it started.

The rooms it composes: ``processes`` (the server's child process), ``locals3`` (the S3 endpoint),
``devices`` (the twin and the virtual ESP32, with ``peer`` between them), ``server_api`` (the
server's JSON API); ``timing`` has the flash lower bound the demo compares the link with.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fota_formats.config import FotaConfig, ServerConfig
from stm32_fota.esp32 import UpdateOutcome, deploy, run_update
from stm32_fota.project import current
from stm32_fota.release import ReleaseResult, Reporter, SilentReporter, release
from stm32_fota.signing import load_signing_key

from . import labtls, locals3
from .devices import WIFI_PASSWORD, WIFI_SSID, Devices, Journal
from .errors import LabError
from .flashing import flash_sim
from .processes import ServerProcess
from .releasekey import KeyFiles, throwaway_key, write_key
from .server_api import ServerApi

WIFI = {"wifi_ssid": WIFI_SSID, "wifi_password": WIFI_PASSWORD}


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
    signing_key: Path | None = None   # the firmware's signing key (default: a throwaway one per lab)
    cfg: FotaConfig = field(init=False)
    server: ServerProcess = field(init=False)
    release_key: KeyFiles = field(init=False)
    devices: Devices = field(init=False)
    s3: locals3.LocalS3Info | None = None

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        state = self.root / "state"
        # both roles' tokens, fresh for each lab: the bridge gets the device token, api() the operator's
        # a throwaway signing key, outside the lab folder (which may lie in the checkout's build/):
        # the firmware's images and the releases are signed with it, the firmware's key ring and the
        # server trust its public half; removed when this process ends
        # (``signing_key``: the key the firmware under test was built with, copied there instead)
        keys = Path(tempfile.mkdtemp(prefix="fota-lab-key-"))
        atexit.register(shutil.rmtree, keys, True)
        self.release_key = (throwaway_key(keys) if self.signing_key is None
                            else write_key(load_signing_key(self.signing_key), keys))
        server = ServerConfig(port=locals3.free_port(), sync_interval_s=3600.0,
                              token=secrets.token_urlsafe(18), operator_token=secrets.token_urlsafe(18),
                              trusted_keys=(str(self.release_key.public),))
        self.cfg = FotaConfig(root=self.root, state_dir=state, firmware_dir=state / "firmware",
                              db_path=state / "server.db", server=server)
        self.server = ServerProcess(self.cfg, self.server_log_level)
        self.devices = Devices(self.root / "stm32-flash.bin", self.root, self.on_uart, self.on_led)

    # -- paths, addresses and parts ----------------------------------------------------------------
    @property
    def flash_file(self) -> Path:
        return self.devices.flash_file

    @property
    def server_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.cfg.server.port}"

    @property
    def ca_cert(self) -> Path | None:
        """The CA of the server's certificate (made with the lab's state), None without TLS."""
        return labtls.lab_certs(self.cfg.state_dir).ca_cert if self.tls else None

    @property
    def api(self) -> ServerApi:
        """The server's JSON API, trusting the lab's CA alone when the server speaks HTTPS."""
        ca = self.ca_cert
        return ServerApi(self.server_url, context=labtls.client_context(ca) if ca else None,
                         token=self.cfg.server.operator_token)

    @property
    def esp_fs(self) -> Path:
        return self.devices.esp_fs

    @property
    def board(self) -> Any:
        """The STM32 twin (None before ``start_devices``)."""
        return self.devices.board

    @property
    def esp(self) -> Any:
        """The virtual ESP32 (None before ``start_devices``)."""
        return self.devices.esp

    @property
    def peer(self) -> Any:
        """The virtual ESP32's peer, ``fota_lab.peer.LabPeer`` (None before ``start_devices``)."""
        return self.devices.peer

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
        """The server in its own process, as `invoke serve` runs it, configured by environment
        (plus its certificate with TLS, plus ``server_env``)."""
        env = labtls.server_env(labtls.lab_certs(self.cfg.state_dir)) if self.tls else {}
        self.server.start({**env, **self.server_env})

    def stop_server(self) -> None:
        self.server.stop()

    def start_devices(self) -> None:
        """The STM32 twin on the flash file, powered, and the virtual ESP32 wired to it."""
        self.devices.start()

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
        """End everything this lab started (each part even when stopping an earlier one fails)."""
        errors = []
        for step in (self.devices.stop, self.server.stop, lambda: locals3.stop(self.cfg)):
            try:
                step()
            except Exception as e:  # keep stopping the rest
                errors.append(str(e))
        if errors:
            raise LabError("Failed to stop the lab cleanly: " + "; ".join(errors))

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
                       signing_key=load_signing_key(self.release_key.private),
                       reporter=reporter or SilentReporter())

    def sync(self) -> dict[str, Any]:
        """POST /api/v1/sync: the server fetches the bucket's newest release now."""
        return self.api.sync()

    def update(self, on_line: Callable[[str], None] = lambda _: None,
               timeout_s: float = 300) -> UpdateOutcome:
        """`invoke update --device <pty>`: one update cycle of the bridge."""
        return run_update(self.esp.port, on_line, timeout_s=timeout_s)

    # -- what the devices and the server say ------------------------------------------------------
    def led(self) -> str:
        """The colour of the LED that blinks now (the running slot: A green, B orange)."""
        return self.devices.led()

    def locked(self) -> AbstractContextManager[Any]:
        """Hold the twin still (the virtual ESP32's thread free-runs it while the REPL is idle)."""
        return self.devices.locked()

    def journal(self) -> Journal | None:
        return self.devices.journal()

    def uart_lines(self) -> list[str]:
        return self.devices.uart_lines()

    def virtual_s(self) -> float:
        return self.devices.virtual_s()

    def device_id(self) -> str:
        """The STM32's unique ID as the bridge reports it (hex of the 96-bit UID)."""
        return self.devices.device_id()

    def device(self) -> dict[str, Any]:
        """The server's record of this device, with its update history (GET /devices/{id})."""
        return self.api.device(self.device_id())

    def updates(self) -> list[dict[str, Any]]:
        """The server's update records of this device, newest first (empty before its first check-in)."""
        return self.api.updates(self.device_id())

    def wait_for(self, what: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if what():
                return True
            time.sleep(step_s)
        return what()
