"""The embedded S3 endpoint: moto's server mode on 127.0.0.1, kept running across commands.

    >>> from fota_formats.config import load_config
    >>> info = start(load_config())       # doctest: +SKIP
    >>> info.endpoint_url                 # doctest: +SKIP
    'http://127.0.0.1:41234'

Used when no bucket is configured, so that ``invoke build release`` and ``invoke serve`` work on a
fresh machine with the same boto3 code path as AWS. The process runs in its own session (it
survives the command that started it); its pid and port live in ``<state_dir>/locals3.json``.

moto keeps objects in memory only. Every object uploaded through ``S3Store`` to this endpoint is
also written to ``<state_dir>/s3-mirror/<bucket>/<key>``, and ``start`` uploads that folder again,
so a stop or a reboot loses nothing that a release uploaded. Objects put into the endpoint by
other tools (aws-cli, a browser) are not mirrored and are lost when it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fota_formats.config import FotaConfig
from fota_s3 import endpoint
from fota_s3.endpoint import LocalS3Error, LocalS3Info, describe_status, port_open, running, state_path
from fota_s3.store import S3Error, S3Store

LOG_FILE = "locals3.log"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
LOST_ON_STOP = ("moto keeps objects in memory; releases uploaded by `invoke release` are mirrored in "
                "{mirror} and restored on the next start; objects put there by other tools are lost")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_moto(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m moto.server`` on 127.0.0.1:port in its own session."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalS3Error("Failed to start the embedded S3 endpoint: moto exited with code "
                               f"{proc.returncode} (see {LOG_FILE} in the state folder)")
        if port_open(port, 0.2):
            return
        time.sleep(0.1)
    raise LocalS3Error(f"Failed to start the embedded S3 endpoint: port {port} did not open within "
                       f"{timeout:.0f} s")


def restore_mirror(store: S3Store, mirror_dir: Path) -> int:
    """Upload every mirrored object of ``store``'s bucket again; returns the count."""
    base = mirror_dir / store.bucket
    if not base.is_dir():
        return 0
    count = 0
    # version.txt last, as in a release: a reader never sees a version before its files.
    files = sorted((p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: (p.name == "version.txt", str(p)))
    for path in files:
        key = path.relative_to(base).as_posix()
        try:
            store.client.put_object(Bucket=store.bucket, Key=key, Body=path.read_bytes())
        except Exception as e:
            raise LocalS3Error(f"Failed to restore {key} into the embedded S3 endpoint: {e}") from None
        count += 1
    return count


def start(cfg: FotaConfig) -> LocalS3Info:
    """Start the endpoint unless it runs; create the bucket and restore the mirror."""
    info = running(cfg)
    if info is not None:
        return LocalS3Info(info.pid, info.port, already_running=True)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = spawn_moto(port, cfg.state_dir / LOG_FILE)
    try:
        wait_port(port, proc, START_TIMEOUT_S)
        store = S3Store.connect(cfg.s3, endpoint_url=f"http://127.0.0.1:{port}")
        store.ensure_bucket()
        restored = restore_mirror(store, cfg.mirror_dir)
    except (LocalS3Error, S3Error):
        _terminate(proc.pid)
        raise
    state_path(cfg).write_text(json.dumps({"pid": proc.pid, "port": port}), encoding="utf-8")
    return LocalS3Info(proc.pid, port, restored=restored)


def _terminate(pid: int) -> bool:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; True when the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it
            if done == pid:
                return True
        except ChildProcessError:
            pass  # not our child (started by an earlier command): poll its existence
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


def stop(cfg: FotaConfig) -> LocalS3Info | None:
    """Stop the endpoint; returns what was stopped, or None when it was not running."""
    info = running(cfg)
    if info is None:
        state_path(cfg).unlink(missing_ok=True)
        return None
    _terminate(info.pid)
    state_path(cfg).unlink(missing_ok=True)
    return info


def lost_on_stop(cfg: FotaConfig) -> str:
    return LOST_ON_STOP.format(mirror=cfg.mirror_dir)


def open_store(cfg: FotaConfig, start_embedded: bool = True) -> S3Store:
    """The release bucket of ``cfg``: the configured one, or the embedded endpoint (started if needed)."""
    if cfg.s3.embedded and start_embedded:
        start(cfg)
    return endpoint.open_store(cfg)


def describe_start(cfg: FotaConfig, info: LocalS3Info) -> str:
    if info.already_running:
        return (f"embedded S3 already running: {info.endpoint_url} (pid {info.pid}), "
                f"bucket {cfg.s3.bucket_name}")
    return (f"embedded S3 started: {info.endpoint_url} (pid {info.pid}), bucket {cfg.s3.bucket_name}, "
            f"{info.restored} objects restored from {cfg.mirror_dir}\n"
            f"It keeps running in the background until `invoke s3-stop`. Note: {lost_on_stop(cfg)}.")


def describe_stop(cfg: FotaConfig, info: LocalS3Info | None) -> str:
    if info is None:
        return "embedded S3: was not running"
    return (f"embedded S3 stopped (pid {info.pid}, port {info.port}). Its memory is gone; "
            f"{lost_on_stop(cfg)}.")


__all__ = ["LocalS3Error", "LocalS3Info", "describe_start", "describe_status", "describe_stop", "free_port",
           "lost_on_stop", "open_store", "running", "start", "stop"]
