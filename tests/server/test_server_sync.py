"""The running server syncs from S3 (moto on loopback): on start, periodically, on request; and keeps
serving when S3 is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from fota_formats.config import FotaConfig
from fota_lab.locals3 import free_port
from fota_s3.store import S3Store
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.keys import RELEASE_KEY, TRUSTED
from fota_testkit.server import LiveServer, install_release, write_build
from stm32_fota.release import release

DEV = "00112233445566778899aabb"
CHECKIN = {
    "device_id": DEV,
    "running_slot": "A",
    "running_version": "1.0.0",
    "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
}


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sync_on_start_periodically_and_on_request(
    cfg: FotaConfig, store: S3Store, tmp_path: Path, database: str
):
    release(store, write_build(tmp_path / "b1", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    settings = ServerSettings(
        firmware_dir=tmp_path / "fw",
        db_path=database,
        sync_interval_s=0.2,
        trusted_keys=TRUSTED,
        store_factory=lambda: S3Store.connect(cfg.s3),
        source=cfg.s3.describe(),
    )
    with LiveServer(create_app(settings)) as srv:

        def version() -> str | None:
            return httpx.get(f"{srv.url}/api/v1/status").json()["version"]

        assert wait_for(lambda: version() == "1.1.0")  # the sync on start
        offer = httpx.post(f"{srv.url}/api/v1/checkin", json=CHECKIN).json()
        assert offer["version"] == "1.1.0" and offer["target_slot"] == "B"
        release(store, write_build(tmp_path / "b2", "1.2.0"), signing_key=RELEASE_KEY, revision="r")
        assert wait_for(lambda: version() == "1.2.0")  # the periodic sync
        assert httpx.post(f"{srv.url}/api/v1/checkin", json=CHECKIN).json()["version"] == "1.2.0"
        # the previous release stays downloadable for a bridge that started on it
        r = httpx.get(srv.url + offer["url"], headers={"Range": "bytes=0-15"})
        assert r.status_code == 206 and len(r.content) == 16
        r = httpx.post(f"{srv.url}/api/v1/sync")
        assert r.status_code == 200 and r.json()["status"] == "up-to-date"
        status = httpx.get(f"{srv.url}/api/v1/status").json()
        assert status["last_sync"]["status"] == "up-to-date" and "s3://" in status["source"]


def test_s3_down_keeps_serving_and_reports(cfg: FotaConfig, tmp_path: Path, database: str):
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    dead = cfg.with_s3(endpoint_url=f"http://127.0.0.1:{free_port()}")
    settings = ServerSettings(
        firmware_dir=folder.root,
        db_path=database,
        sync_on_start=False,
        trusted_keys=TRUSTED,
        store_factory=lambda: S3Store.connect(dead.s3),
    )
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/v1/sync")
        assert r.status_code == 502, r.text  # a failed sync is not a success
        assert r.json()["status"] == "error" and "Could not connect" in r.json()["detail"]
        assert c.get("/api/v1/status").json()["last_sync"]["status"] == "error"
        d = c.post("/api/v1/checkin", json=CHECKIN).json()
        assert d["update"] is True and d["version"] == "1.1.0"
        assert c.get(d["url"]).status_code == 200
