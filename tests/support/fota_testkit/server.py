"""Helpers of the server tests: bucket listings and a uvicorn on loopback. The fake-but-valid images,
builds and installed releases they use come from fota_lab.images (the benchmarks use them too)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fota_lab import locals3
from fota_lab.images import install_release, make_image, write_build
from fota_s3.store import S3Store

__all__ = ["LiveServer", "bucket_objects", "folder_snapshot", "install_release", "make_image", "write_build"]


def folder_snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file under ``root`` and where each symlink (``current``) points: to prove it untouched."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def bucket_objects(store: S3Store) -> dict[str, bytes]:
    """Every object in the bucket (whole bucket, not only the prefix) with its content."""
    out: dict[str, bytes] = {}
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = store.client.get_object(Bucket=store.bucket, Key=obj["Key"])["Body"].read()
    return out


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread (real sockets, real HTTP; HTTPS with
    ``tls=(certificate, key)``)."""

    def __init__(self, app: FastAPI, tls: tuple[Path, Path] | None = None) -> None:
        self.port = locals3.free_port()
        self.scheme = "https" if tls else "http"
        ssl_opts = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                           **ssl_opts)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ServerProcess:
    """``python -m fota_server`` in its own process on 127.0.0.1 (the real entry point, with its
    uvicorn options and logging), configured by environment like ``invoke serve``; its output goes
    to ``log_path``. ``rss_kb()`` is its resident memory (Linux /proc)."""

    def __init__(self, tmp: Path, firmware_dir: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.port = locals3.free_port()
        self.log_path = tmp / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FOTA_")}
        self.env.update(
            FOTA_STATE_DIR=str(tmp / "state"),
            FOTA_FIRMWARE_DIR=str(firmware_dir),
            FOTA_DB=str(tmp / "server.db"),
            FOTA_SERVER_PORT=str(self.port),
            PYTHONUNBUFFERED="1",
            **(env or {}),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fota_server", "--no-sync", "--log-level", "info"],
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the server did not start: {self.log()}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc/<pid>/status")
