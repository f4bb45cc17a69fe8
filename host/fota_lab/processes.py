"""The lab's update server in a child process of its own, as `invoke serve` runs it.

    >>> server = ServerProcess(cfg, log_level="warning")     # doctest: +SKIP
    >>> server.start(); server.running                        # doctest: +SKIP
    True
    >>> server.stop()                                         # doctest: +SKIP

The server is started as ``python -m fota_server``, configured through FOTA_* environment variables
only (the user's fota.toml and environment play no part), with its working directory and log
(``server.log``) in the lab's state folder. On Linux the child dies with the lab's process, even
when that is killed, so that no server outlives a lab. The lab's S3 endpoint is a process too, but
one that ``invoke s3-start`` shares: ``fota_lab.locals3`` starts and stops it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fota_formats.config import FotaConfig

from .errors import LabError

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LOG_FILE = "server.log"
PR_SET_PDEATHSIG = 1          # prctl(2)


def die_with_parent() -> None:
    """In a child process before exec: Linux kills it when the parent process dies (even by SIGKILL).
    Does nothing where prctl(2) does not exist."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; LabError when ``proc`` exits first or
    the port stays closed for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise LabError(f"Failed to start {what}: it exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise LabError(f"Failed to start {what}: port {port} did not open within {timeout_s:.0f} s")
        time.sleep(0.05)


def server_env(cfg: FotaConfig, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any FOTA_* variable, plus the server's settings of ``cfg``,
    plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOTA_")}
    env.update(FOTA_STATE_DIR=str(cfg.state_dir), FOTA_FIRMWARE_DIR=str(cfg.firmware_dir),
               FOTA_DB=str(cfg.db_path), FOTA_SERVER_HOST=cfg.server.host,
               FOTA_SERVER_PORT=str(cfg.server.port),
               FOTA_SYNC_INTERVAL=str(cfg.server.sync_interval_s), PYTHONUNBUFFERED="1",
               FOTA_SERVER_TOKEN=cfg.server.token or "", FOTA_OPERATOR_TOKEN=cfg.server.operator_token or "",
               FOTA_SERVER_TRUSTED_KEYS=",".join(cfg.server.trusted_keys))
    env.update(extra or {})
    return env


class ServerProcess:
    """The update server of ``cfg`` (its port, state folder, registry) in a child process."""

    def __init__(self, cfg: FotaConfig, log_level: str = "warning") -> None:
        self.cfg = cfg
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.cfg.state_dir / LOG_FILE

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Start the server unless it runs (``extra_env``: more environment, e.g. its certificate),
        and wait until its port accepts connections."""
        if self.running:
            return
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "fota_server", "--log-level", self.log_level]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child holds it)
        try:
            self.proc = subprocess.Popen(argv, cwd=self.cfg.state_dir, env=server_env(self.cfg, extra_env),
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent)
        except OSError as e:
            raise LabError(f"Failed to start the update server: {e}") from None
        finally:
            log.close()
        try:
            wait_port(self.cfg.server.port, self.proc, START_TIMEOUT_S, "the update server")
        except LabError as e:
            self.stop()
            raise LabError(f"{e} (log: {self.log_path})") from None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when the server has not ended within STOP_TIMEOUT_S."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
