"""The invoke tasks of this area, run as a user runs them (a subprocess), against moto on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig
from fota_lab.releasekey import throwaway_key
from fota_testkit.server import write_build

ROOT = Path(__file__).resolve().parents[2]


def invoke(args: list[str], cfg: FotaConfig, tmp_path: Path,
           extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "fota.toml"
    empty.write_text("")  # never the developer's own fota.toml
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FOTA_")},  # no token, no other bucket
        "FOTA_CONFIG": str(empty),
        "FOTA_S3_BUCKET": cfg.s3.bucket_name,
        "FOTA_S3_PREFIX": cfg.s3.prefix,
        "FOTA_S3_ENDPOINT_URL": cfg.s3.endpoint_url or "",
        "FOTA_STATE_DIR": str(tmp_path / "state"),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_release_task_uploads_then_refuses_the_same_version(cfg: FotaConfig, tmp_path: Path):
    from stm32_fota.signing import load_signing_key

    key = throwaway_key(tmp_path / "keys")
    build = write_build(tmp_path / "build", "2.3.4", key=load_signing_key(key.private))
    unsigned = invoke(["release", "--build-dir", str(build)], cfg, tmp_path)
    assert unsigned.returncode == 1 and "Traceback" not in unsigned.stderr
    assert "no signing key; the server and the devices refuse an unsigned release" in unsigned.stderr
    first = invoke(["release", "--build-dir", str(build), "--key", str(key.private)], cfg, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "uploaded  manifest.json.sig" in first.stdout
    assert "uploaded  version.txt" in first.stdout and "Released 2.3.4" in first.stdout
    assert first.stdout.index("uploaded  slot-a.bin") < first.stdout.index("uploaded  version.txt")
    with_env = {"FOTA_SIGNING_KEY": str(key.private)}     # the key from the environment
    again = invoke(["release", "--build-dir", str(build)], cfg, tmp_path, with_env)
    assert again.returncode == 1
    assert "version 2.3.4 is not higher than 2.3.4" in again.stderr and "Traceback" not in again.stderr
    forced = invoke(["release", "--build-dir", str(build), "--force"], cfg, tmp_path, with_env)
    assert forced.returncode == 0, forced.stderr


def test_s3_tasks_with_a_configured_bucket(cfg: FotaConfig, tmp_path: Path):
    status = invoke(["s3-status"], cfg, tmp_path)
    assert status.returncode == 0 and "a bucket is configured" in status.stdout
    start = invoke(["s3-start"], cfg, tmp_path)
    assert start.returncode == 1 and "the embedded S3 is not used" in start.stderr


def test_serve_refuses_the_lan_without_a_token(cfg: FotaConfig, tmp_path: Path):
    r = invoke(["serve", "--lan", "--no-sync"], cfg, tmp_path)
    assert r.returncode == 1 and "requires a device token" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_plain_http_on_the_lan(cfg: FotaConfig, tmp_path: Path):
    r = invoke(["serve", "--lan", "--no-sync"], cfg, tmp_path, {"FOTA_SERVER_TOKEN": "lan-token",
                                                                 "FOTA_OPERATOR_TOKEN": "lan-operator"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "over plain HTTP would send the device token in clear text" in r.stderr
    assert "--insecure-http" in r.stderr
    assert "lan-token" not in r.stderr + r.stdout and "lan-operator" not in r.stderr + r.stdout


def test_certs_task_makes_the_ca_and_refuses_to_overwrite(cfg: FotaConfig, tmp_path: Path):
    first = invoke(["certs", "--host", "10.1.2.3", "--host", "fota.lan"], cfg, tmp_path)
    assert first.returncode == 0, first.stderr
    tls = tmp_path / "state" / "tls"
    assert f"certs: CA created: {tls / 'ca.pem'}" in first.stdout
    assert "for 10.1.2.3, fota.lan," in first.stdout and first.stdout.count("SHA-256 ") == 2
    assert "PRIVATE KEY" not in first.stdout and (tls / "server.key").stat().st_mode & 0o777 == 0o600
    again = invoke(["certs", "--host", "10.1.2.4"], cfg, tmp_path)
    assert again.returncode == 1 and "already exist; pass --force" in again.stderr
    assert "Traceback" not in again.stderr
    forced = invoke(["certs", "--host", "10.1.2.4", "--force"], cfg, tmp_path)
    assert forced.returncode == 0 and "CA kept" in forced.stdout and "for 10.1.2.4," in forced.stdout


def test_db_upgrade_creates_then_finds_the_registry_up_to_date(cfg: FotaConfig, tmp_path: Path):
    first = invoke(["db-upgrade"], cfg, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "server.db: schema upgraded from none to " in first.stdout
    again = invoke(["db-upgrade"], cfg, tmp_path)
    assert again.returncode == 0 and "schema already at" in again.stdout
