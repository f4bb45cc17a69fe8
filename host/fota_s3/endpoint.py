"""Find the embedded S3 endpoint that ``invoke s3-start`` (or the lab) started, and open the bucket.

    >>> from fota_formats.config import load_config
    >>> store = open_store(load_config())     # doctest: +SKIP   (a configured bucket, or the endpoint)

When no bucket is configured, releases live on a local S3-compatible endpoint (moto's server mode)
that runs in its own process; its pid and port are in ``<state_dir>/locals3.json``. This module only
reads that file and connects: starting and stopping the endpoint is the lab's job
(``fota_lab.locals3``), so that the server and the publisher never start a stand-in themselves.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from fota_formats.config import FotaConfig
from fota_formats.errors import FotaError

from .store import S3Store

STATE_FILE = "locals3.json"


class LocalS3Error(FotaError):
    """The embedded S3 endpoint could not be started, reached or stopped."""


@dataclass(frozen=True)
class LocalS3Info:
    pid: int
    port: int
    restored: int = 0  # objects restored from the mirror by this start (0 when already running)
    already_running: bool = False

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _state_path(cfg: FotaConfig) -> Path:
    return cfg.state_dir / STATE_FILE


def _read_state(cfg: FotaConfig) -> LocalS3Info | None:
    try:
        raw = json.loads(_state_path(cfg).read_text(encoding="utf-8"))
        return LocalS3Info(pid=int(raw["pid"]), port=int(raw["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def state_path(cfg: FotaConfig) -> Path:
    return cfg.state_dir / STATE_FILE


def _read_state(cfg: FotaConfig) -> LocalS3Info | None:
    try:
        raw = json.loads(state_path(cfg).read_text(encoding="utf-8"))
        return LocalS3Info(pid=int(raw["pid"]), port=int(raw["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_moto(pid: int) -> bool:
    """True when ``pid`` is alive and is a moto server (never signal a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the state file
    return b"moto" in cmdline


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def running(cfg: FotaConfig) -> LocalS3Info | None:
    """The running embedded endpoint, or None (a stale state file is removed)."""
    info = _read_state(cfg)
    if info is None:
        return None
    if is_moto(info.pid) and port_open(info.port):
        return info
    state_path(cfg).unlink(missing_ok=True)
    return None


def open_store(cfg: FotaConfig) -> S3Store:
    """The release bucket of ``cfg``: the configured one, or the running embedded endpoint."""
    if not cfg.s3.embedded:
        return S3Store.connect(cfg.s3)
    info = running(cfg)
    if info is None:
        raise LocalS3Error("Failed to reach the embedded S3 endpoint: it is not running "
                           "(start it with `invoke s3-start`, or configure a bucket)")
    return S3Store.connect(cfg.s3, endpoint_url=info.endpoint_url, mirror_dir=cfg.mirror_dir)


def describe_status(cfg: FotaConfig) -> str:
    if not cfg.s3.embedded:
        return f"a bucket is configured ({cfg.s3.describe()}): the embedded S3 endpoint is not used"
    info = running(cfg)
    if info is None:
        return f"embedded S3: not running (state in {cfg.state_dir}; `invoke s3-start` starts it)"
    mirrored = sum(1 for p in (cfg.mirror_dir / cfg.s3.bucket_name).rglob("*") if p.is_file()) \
        if (cfg.mirror_dir / cfg.s3.bucket_name).is_dir() else 0
    return (f"embedded S3: running at {info.endpoint_url} (pid {info.pid}), bucket {cfg.s3.bucket_name}, "
            f"{mirrored} objects mirrored in {cfg.mirror_dir}")
