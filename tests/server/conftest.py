"""Fixtures of the release and server tests: a real moto S3 server on loopback, buckets, releases."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fota_server.firmware import FirmwareFolder
from srv_images import write_build
from stm32_fota import locals3
from stm32_fota.config import FotaConfig, S3Config, ServerConfig
from stm32_fota.release import check_build, make_manifest
from stm32_fota.s3 import S3Store


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server (a separate process, real HTTP) for the whole test session."""
    port = locals3.free_port()
    proc = locals3.spawn_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        locals3.wait_port(port, proc, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except Exception:
            proc.kill()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for boto3's standard chain (moto accepts any), isolated from the user's."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent-aws-credentials")


@pytest.fixture
def cfg(tmp_path: Path, moto_url: str, aws_env: None) -> FotaConfig:
    """A configured (not embedded) bucket of its own on the moto server, with a prefix."""
    bucket = f"fw-{secrets.token_hex(6)}"
    s3 = S3Config(bucket=bucket, prefix="boards/disco", region="us-east-1", endpoint_url=moto_url)
    S3Store.connect(s3).client.create_bucket(Bucket=bucket)
    return FotaConfig(
        root=tmp_path,
        s3=s3,
        server=ServerConfig(),
        state_dir=tmp_path / ".fota",
        firmware_dir=tmp_path / ".fota" / "firmware",
        db_path=tmp_path / ".fota" / "server.db",
        build_dir=tmp_path / "build",
    )


@pytest.fixture
def store(cfg: FotaConfig) -> S3Store:
    return S3Store.connect(cfg.s3)


def bucket_objects(store: S3Store) -> dict[str, bytes]:
    """Every object in the bucket (whole bucket, not only the prefix) with its content."""
    out: dict[str, bytes] = {}
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = store.client.get_object(Bucket=store.bucket, Key=obj["Key"])["Body"].read()
    return out


def install_release(
    folder: FirmwareFolder, tmp: Path, version: str, downgrade: bool = False, body: int = 4096
) -> None:
    """Put a verified release into a local firmware folder, as a sync would."""
    build = write_build(tmp / f"build-{version}-{secrets.token_hex(3)}", version, body=body)
    files = check_build(build)
    manifest = make_manifest(files, "test", downgrade)
    folder.install(
        files.version, {**files.images, "version.txt": files.version_text}, json.dumps(manifest).encode()
    )


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread (real sockets, real HTTP)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = locals3.free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
