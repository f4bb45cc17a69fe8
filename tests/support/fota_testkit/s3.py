"""S3 fixtures shared by the release, server, lab and task tests: a real moto S3 server on loopback,
buckets, configs. Registered for the whole suite by tests/conftest.py."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig, S3Config, ServerConfig
from fota_lab import locals3
from fota_s3.store import S3Store


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
