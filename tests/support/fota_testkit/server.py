"""Helpers of the server tests: bucket listings and a uvicorn on loopback. The fake-but-valid images,
builds and installed releases they use come from fota_lab.images (the benchmarks use them too)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fota_lab import locals3
from fota_lab.images import install_release, make_image, write_build
from fota_s3.store import S3Store

__all__ = ["LiveServer", "bucket_objects", "install_release", "make_image", "write_build"]


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
