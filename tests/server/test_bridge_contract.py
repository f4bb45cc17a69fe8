"""Contract test: the bridge's own HTTP client (esp32_mpy/net.py, run under CPython) against the real
server on loopback: check-in, download, resume with Range, reports, token."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.server import LiveServer, install_release

BRIDGE = Path(__file__).resolve().parents[2] / "esp32_mpy"
if str(BRIDGE) not in sys.path:
    sys.path.insert(0, str(BRIDGE))

import fotalink  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)
import net  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)

TOKEN = "bridge-token"
DEV = "aabbccddeeff001122334455"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("contract")
    folder = FirmwareFolder(tmp / "fw")
    install_release(folder, tmp, "1.1.0", body=30_000)
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=module_database, token=TOKEN))
    with LiveServer(app) as srv:
        yield srv


def read_body(body: Any) -> bytes:  # a net.Body
    buf = bytearray(4096)
    mv = memoryview(buf)
    out = bytearray()
    try:
        while True:
            n = body.readinto(mv)
            if not n:
                return bytes(out)
            out += mv[:n]
    finally:
        body.close()


def test_bridge_client_full_cycle(server: LiveServer):
    http = net.Http(server.url, token=TOKEN, timeout_s=5)
    doc = {
        "device_id": DEV,
        "running_slot": "B",
        "running_version": "1.0.0",
        "slots": {"A": {"state": "empty", "version": None}, "B": {"state": "valid", "version": "1.0.0"}},
        "security_counter": 1, "key_id": "0123abcd",
    }
    offer = http.post_json("/api/v1/checkin", doc)
    assert offer["update"] is True and offer["target_slot"] == "A" and offer["downgrade"] is False
    image = read_body(http.get(offer["url"]))
    assert len(image) == offer["size"] and hashlib.sha256(image).hexdigest() == offer["sha256"]
    resumed = http.get(offer["url"], offset=12_345)
    assert resumed.status == 206
    assert read_body(resumed) == image[12_345:]

    base = {
        "device_id": DEV,
        "update_id": offer["update_id"],
        "running_slot": "B",
        "running_version": "1.0.0",
    }
    r = http.post_json(
        "/api/v1/report",
        {**base, "stage": "progress", "offset": 8192, "outcome": None, "reason": None, "duration_ms": 0},
    )
    assert r["ok"] is True and r["update"]["status"] == "in_progress"
    r = http.post_json(
        "/api/v1/report",
        {
            **base,
            "stage": "result",
            "offset": offer["size"],
            "outcome": "confirmed",
            "reason": None,
            "duration_ms": 5200,
            "running_slot": "A",
            "running_version": "1.1.0",
        },
    )
    assert r["update"]["status"] == "confirmed" and r["update"]["duration_ms"] == 5200
    again = http.post_json("/api/v1/checkin", {**doc, "running_slot": "A", "running_version": "1.1.0"})
    assert again == {"update": False, "reason": "up to date: running 1.1.0, the release"}


def test_bridge_client_errors(server: LiveServer):
    with pytest.raises(fotalink.BridgeError, match="401"):
        net.Http(server.url, token="wrong", timeout_s=5).post_json("/api/v1/checkin", {"device_id": DEV})
    http = net.Http(server.url, token=TOKEN, timeout_s=5)
    with pytest.raises(fotalink.BridgeError, match="422"):
        http.post_json("/api/v1/checkin", {"device_id": "not-hex"})
    with pytest.raises(fotalink.BridgeError, match="416"):
        http.get("/api/v1/firmware/1.1.0/slot-a.bin", offset=10_000_000)
