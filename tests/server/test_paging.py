"""Every list is paged with a total (nothing silently cut off), and a device's progress offset only
moves forward within an update."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.server import install_release

DEVICES = 1154
SLOTS = {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    with TestClient(create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "db"))) as c:
        yield c


def walk(client: TestClient, url: str) -> tuple[list[dict[str, object]], int, int]:
    """Follow ``next`` from ``url``; returns the items, the total, and the number of pages."""
    items: list[dict[str, object]] = []
    pages = 0
    next_url: str | None = url
    total = -1
    while next_url is not None:
        page = client.get(next_url).json()
        assert total in (-1, page["total"])
        total = page["total"]
        items += page["items"]
        next_url = page["next"]
        pages += 1
        assert pages < 100
    return items, total, pages


def test_all_devices_are_reachable_page_by_page(client: TestClient):
    registry = client.app.state.fota.registry
    ids = [f"{i:024x}" for i in range(DEVICES)]
    for device_id in ids:
        registry.record_checkin(device_id, "A", "1.0.0", SLOTS)
    first = client.get("/api/v1/devices").json()  # default page
    assert first["total"] == DEVICES and len(first["items"]) == 100
    assert first["next"] == "/api/v1/devices?offset=100&limit=100"
    items, total, pages = walk(client, "/api/v1/devices?limit=500")
    assert total == DEVICES and pages == 3
    assert [d["device_id"] for d in items] == sorted(ids)  # every one, once, in ID order
    last = client.get("/api/v1/devices", params={"offset": DEVICES - 4, "limit": 1000}).json()
    assert len(last["items"]) == 4 and last["next"] is None
    assert client.get("/api/v1/devices", params={"offset": DEVICES + 5}).json()["items"] == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        assert client.get("/api/v1/devices", params=bad).status_code == 422, bad


def test_update_history_is_paged_per_device_and_in_all(client: TestClient):
    registry = client.app.state.fota.registry
    device = "ab" * 12
    registry.record_checkin(device, "A", "1.0.0", SLOTS)
    for i in range(120):  # each new offer supersedes the open one: 120 rows for this device
        registry.open_update(device, f"1.{i + 1}.0", "B", "slot-b.bin", 10, "0" * 64, False, "A", "1.0.0")
    items, total, pages = walk(client, f"/api/v1/updates?device_id={device}&limit=50")
    assert total == 120 and pages == 3 and len({u["id"] for u in items}) == 120
    assert [u["id"] for u in items] == sorted((u["id"] for u in items), reverse=True)  # newest first
    detail = client.get(f"/api/v1/devices/{device}").json()
    assert len(detail["updates"]) == 100 and detail["updates_total"] == 120  # says what it leaves out
    assert client.get("/api/v1/updates").json()["total"] == 120


def test_progress_offset_never_moves_back(client: TestClient):
    device = "cd" * 12
    offer = client.post(
        "/api/v1/checkin",
        json={"device_id": device, "running_slot": "A", "running_version": "1.0.0", "slots": SLOTS},
    ).json()

    def report(offset: int, **extra: object) -> dict[str, object]:
        body = {"device_id": device, "update_id": offer["update_id"], "stage": "progress", "offset": offset}
        r = client.post("/api/v1/report", json={**body, **extra})
        assert r.status_code == 200, r.text
        return r.json()["update"]

    assert report(2048)["offset"] == 2048
    assert report(1024)["offset"] == 2048  # a late report: ignored for the offset
    assert report(3072)["offset"] == 3072
    done = report(0, stage="result", outcome="failed", reason="Wi-Fi lost")
    assert done["status"] == "failed" and done["offset"] == 3072
