"""The bridge API: check-in decisions, Range downloads, reports, registry, errors, tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fota_formats.config import ConfigError, FotaConfig, ServerConfig
from fota_formats.image import image_counter
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_server.models import CheckInReply
from fota_server.serve import build_app, check_listen
from fota_testkit.server import LiveServer, install_release

DEV = "0123456789abcdef01234567"
DEV2 = "fedcba9876543210fedcba98"


def checkin_body(slot: str = "A", version: str = "1.0.0", device: str = DEV, **slots: Any) -> dict[str, Any]:
    s = {
        "A": {"state": "valid", "version": version if slot == "A" else None},
        "B": {"state": "valid" if slot == "B" else "empty", "version": version if slot == "B" else None},
    }
    s.update(slots)
    return {"device_id": device, "running_slot": slot, "running_version": version, "slots": s}


def make_client(
    tmp_path: Path,
    database: str,
    version: str | None = "1.1.0",
    downgrade: bool = False,
    token: str | None = None,
    operator_token: str | None = None,
) -> TestClient:
    folder = FirmwareFolder(tmp_path / "firmware")
    if version:
        install_release(folder, tmp_path, version, downgrade=downgrade, body=20_000)
    app = create_app(
        ServerSettings(
            firmware_dir=folder.root,
            db_path=database,
            token=token,
            operator_token=operator_token,
        )
    )
    return TestClient(app)


@pytest.fixture
def client(tmp_path: Path, database: str) -> Iterator[TestClient]:
    with make_client(tmp_path, database) as c:
        yield c


@pytest.mark.parametrize(
    ("slot", "running", "update", "target"),
    [
        ("A", "1.0.0", True, "B"),  # Slot A running -> the Slot-B image
        ("B", "1.0.0", True, "A"),  # Slot B running -> the Slot-A image
        ("A", "1.0.9", True, "B"),
        ("B", "0.99.99", True, "A"),
        ("A", "1.1.0", False, None),  # up to date
        ("B", "1.1.0", False, None),
        ("A", "1.2.0", False, None),  # newer than the release, not a downgrade
        ("B", "1.10.0", False, None),  # 1.10.0 > 1.1.0 (semantic order)
    ],
)
def test_checkin_decisions(client: TestClient, slot: str, running: str, update: bool, target: str | None):
    r = client.post("/api/v1/checkin", json=checkin_body(slot, running))
    assert r.status_code == 200, r.text
    d = r.json()
    CheckInReply.model_validate(d, strict=True)  # the documented reply schema
    assert d["update"] is update
    if not update:
        assert set(d) == {"update", "reason"} and d["reason"]
        return
    status = client.get("/api/v1/status").json()
    name = f"slot-{target.lower()}.bin"
    assert d["target_slot"] == target != slot
    assert d["version"] == "1.1.0" and d["downgrade"] is False and d["update_id"] >= 1
    assert d["url"] == f"/api/v1/firmware/1.1.0/{name}"
    assert d["size"] == status["files"][name]["size"] and d["sha256"] == status["files"][name]["sha256"]
    image = client.get(d["url"])
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == d["sha256"]
    assert len(image.content) == d["size"]
    assert d["security_counter"] == image_counter(image.content) is not None   # what BEGIN announces


def test_downgrade_only_when_marked(tmp_path: Path, database: str):
    with make_client(tmp_path / "plain", database, "1.0.0") as c:
        d = c.post("/api/v1/checkin", json=checkin_body("B", "2.0.0")).json()
        assert d["update"] is False and "not marked as a downgrade" in d["reason"]
    with make_client(tmp_path / "marked", database, "1.0.0", downgrade=True) as c:
        d = c.post("/api/v1/checkin", json=checkin_body("B", "2.0.0")).json()
        assert d["update"] is True and d["downgrade"] is True and d["target_slot"] == "A"
        assert c.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()["update"] is False


def test_no_release_yet(tmp_path: Path, database: str):
    with make_client(tmp_path, database, None) as c:
        d = c.post("/api/v1/checkin", json=checkin_body()).json()
        assert d == {"update": False, "reason": "no release on this server yet"}
        assert c.get("/api/v1/firmware/1.0.0/slot-a.bin").status_code == 404
        assert c.get("/api/v1/status").json()["version"] is None


def test_range_downloads(client: TestClient):
    d = client.post("/api/v1/checkin", json=checkin_body()).json()
    full = client.get(d["url"])
    data, size = full.content, len(full.content)
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["etag"] == f'"{d["sha256"]}"'
    cases = {
        "bytes=0-99": (0, 99),  # first
        f"bytes={size // 2}-{size // 2 + 4095}": (size // 2, size // 2 + 4095),  # middle
        f"bytes={size - 10}-": (size - 10, size - 1),  # last (resume form)
        "bytes=-16": (size - 16, size - 1),  # suffix
        f"bytes=100-{size * 2}": (100, size - 1),  # end clamped to the file
        f"bytes={size - 1}-{size - 1}": (size - 1, size - 1),
    }
    for header, (first, last) in cases.items():
        r = client.get(d["url"], headers={"Range": header})
        assert r.status_code == 206, (header, r.text)
        assert r.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert r.content == data[first : last + 1]
        assert int(r.headers["content-length"]) == last - first + 1
    # resuming in pieces reassembles the image
    parts, offset = [], 0
    while offset < size:
        r = client.get(d["url"], headers={"Range": f"bytes={offset}-{offset + 6999}"})
        parts.append(r.content)
        offset += len(r.content)
    assert b"".join(parts) == data
    for bad in (
        f"bytes={size}-",
        f"bytes={size + 5}-{size + 9}",
        "bytes=50-10",
        "bytes=-0",
        "bytes=abc",
        "bytes=-",
        "bytes=1-2-3",
    ):
        r = client.get(d["url"], headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{size}" and r.json()["detail"]
    for ignored in ("items=0-5", "bytes=0-1,5-9"):  # other units, several ranges: the whole file
        r = client.get(d["url"], headers={"Range": ignored})
        assert r.status_code == 200 and r.content == data
    head = client.head(d["url"], headers={"Range": "bytes=10-"})
    assert (
        head.status_code == 206 and head.headers["content-length"] == str(size - 10) and head.content == b""
    )


def test_download_unknown_version_or_name(client: TestClient):
    assert client.get("/api/v1/firmware/9.9.9/slot-a.bin").status_code == 404
    assert client.get("/api/v1/firmware/1.1.0/bootloader.bin").status_code == 422
    assert client.get("/api/v1/firmware/..%2F..%2Fetc/slot-a.bin").status_code in (404, 422)


def test_previous_release_stays_downloadable_after_sync(tmp_path: Path, database: str):
    with make_client(tmp_path, database, "1.0.0") as c:
        d = c.post("/api/v1/checkin", json=checkin_body("A", "0.9.0")).json()
        install_release(c.app.state.fota.folder, tmp_path, "1.1.0")  # as a sync would
        c.app.state.fota.load_current()
        r = c.get(d["url"], headers={"Range": "bytes=100-"})
        assert r.status_code == 206 and d["version"] == "1.0.0"
        assert c.post("/api/v1/checkin", json=checkin_body("A", "0.9.0")).json()["version"] == "1.1.0"


def test_reports_and_registry(client: TestClient):
    d = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()
    again = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()
    assert again["update_id"] == d["update_id"]  # same open update, not a new row
    uid = d["update_id"]
    base = {"device_id": DEV, "update_id": uid, "running_slot": "A", "running_version": "1.0.0"}
    r = client.post("/api/v1/report", json={**base, "stage": "progress", "offset": 8192})
    assert r.status_code == 200 and r.json()["update"]["status"] == "in_progress"
    assert r.json()["update"]["offset"] == 8192
    r = client.post("/api/v1/report", json={**base, "stage": "progress", "offset": d["size"] + 1})
    assert r.status_code == 422 and "beyond the image size" in r.json()["detail"]
    r = client.post("/api/v1/report", json={**base, "stage": "result"})
    assert r.status_code == 422 and "needs an outcome" in r.json()["detail"]
    r = client.post(
        "/api/v1/report",
        json={
            **base,
            "stage": "result",
            "outcome": "confirmed",
            "offset": d["size"],
            "duration_ms": 41234,
            "running_slot": "B",
            "running_version": "1.1.0",
        },
    )
    assert r.status_code == 200
    u = r.json()["update"]
    assert (u["status"], u["duration_ms"], u["result_slot"], u["result_version"]) == (
        "confirmed",
        41234,
        "B",
        "1.1.0",
    )
    # a retried identical result is accepted; a contradicting one is a conflict
    assert (
        client.post("/api/v1/report", json={**base, "stage": "result", "outcome": "confirmed"}).status_code
        == 200
    )
    r = client.post("/api/v1/report", json={**base, "stage": "result", "outcome": "failed"})
    assert r.status_code == 409 and "already finished" in r.json()["detail"]
    r = client.post("/api/v1/report", json={**base, "stage": "progress", "offset": 0})
    assert r.status_code == 409
    r = client.post("/api/v1/report", json={**base, "device_id": DEV2, "stage": "progress"})
    assert r.status_code == 404 and "not found" in r.json()["detail"]
    r = client.post("/api/v1/report", json={**base, "update_id": 999, "stage": "progress"})
    assert r.status_code == 404

    dev = client.get(f"/api/v1/devices/{DEV}").json()
    assert dev["running_slot"] == "B" and dev["running_version"] == "1.1.0" and dev["checkins"] == 2
    assert dev["slots"]["A"] == {"state": "valid", "version": "1.0.0"}
    assert [(u["id"], u["status"], u["from_version"], u["version"]) for u in dev["updates"]] == [
        (uid, "confirmed", "1.0.0", "1.1.0")
    ]
    assert client.get(f"/api/v1/devices/{DEV.upper()}").status_code == 200
    assert client.get(f"/api/v1/devices/{DEV2}").status_code == 404
    assert dev["updates_total"] == 1
    page = client.get("/api/v1/devices").json()
    assert [x["device_id"] for x in page["items"]] == [DEV] and page["total"] == 1 and page["next"] is None
    assert client.get("/api/v1/updates").json()["items"][0]["id"] == uid
    assert client.get("/api/v1/updates", params={"device_id": DEV2}).json()["items"] == []
    assert client.get("/api/v1/status").json()["devices"] == 1
    # confirmed on 1.1.0 now: nothing more to do
    assert client.post("/api/v1/checkin", json=checkin_body("B", "1.1.0")).json()["update"] is False


def test_result_report_with_unknown_running_slot(client: TestClient):
    """The bridge sends "?" when it could not read the STM32's state after the update."""
    d = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()
    r = client.post(
        "/api/v1/report",
        json={
            "device_id": DEV,
            "update_id": d["update_id"],
            "stage": "result",
            "outcome": "failed",
            "reason": "READY never high",
            "offset": 4096,
            "duration_ms": 1200,
            "running_slot": "?",
            "running_version": None,
        },
    )
    assert r.status_code == 200, r.text
    u = r.json()["update"]
    assert (u["status"], u["result_slot"], u["reason"]) == ("failed", None, "READY never high")
    dev = client.get(f"/api/v1/devices/{DEV}").json()
    assert dev["running_slot"] == "A"  # an unknown slot does not overwrite what the check-in said


def test_reverted_update_is_not_offered_again(client: TestClient):
    d = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()
    r = client.post(
        "/api/v1/report",
        json={
            "device_id": DEV,
            "update_id": d["update_id"],
            "stage": "result",
            "outcome": "reverted",
            "reason": "no CONFIRM within 3 boots",
            "running_slot": "A",
            "running_version": "1.0.0",
        },
    )
    assert r.status_code == 200
    again = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0")).json()
    assert again["update"] is False and "reverted on this device" in again["reason"]
    # a failed transfer, by contrast, is retried with a new update
    d2 = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0", device=DEV2)).json()
    client.post(
        "/api/v1/report",
        json={
            "device_id": DEV2,
            "update_id": d2["update_id"],
            "stage": "result",
            "outcome": "failed",
            "reason": "Wi-Fi lost",
        },
    )
    d3 = client.post("/api/v1/checkin", json=checkin_body("A", "1.0.0", device=DEV2)).json()
    assert d3["update"] is True and d3["update_id"] != d2["update_id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"device_id": "xyz"},
        checkin_body(device="0123"),
        checkin_body(slot="C"),
        {**checkin_body(), "running_version": "1.0"},
        {**checkin_body(), "running_version": "1.0.99999"},  # patch above the image format's u16
        {**checkin_body(), "slots": {"A": {"state": "broken"}, "B": {"state": "empty"}}},
        [1, 2, 3],
    ],
)
def test_bad_checkins_get_422_with_a_message(client: TestClient, body: Any):
    r = client.post("/api/v1/checkin", json=body)
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str) and r.json()["detail"].startswith("invalid request")


def test_nul_character_in_a_reason_is_refused_on_every_backend(client: TestClient):
    """PostgreSQL text cannot hold NUL: the registry refuses it (422) on SQLite as well."""
    d = client.post("/api/v1/checkin", json=checkin_body()).json()
    base = {"device_id": DEV, "update_id": d["update_id"], "stage": "result", "outcome": "failed"}
    r = client.post("/api/v1/report", json={**base, "reason": "Wi-Fi\x00lost"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = client.post("/api/v1/report", json={**base, "reason": "Wi-Fi lost"})
    assert r.status_code == 200 and r.json()["update"]["reason"] == "Wi-Fi lost"


def test_malformed_json_and_huge_numbers(client: TestClient):
    r = client.post("/api/v1/checkin", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    r = client.post("/api/v1/report", json={"device_id": DEV, "update_id": 10**30, "stage": "progress"})
    assert r.status_code == 422
    r = client.post(
        "/api/v1/report", json={"device_id": DEV, "update_id": 1, "stage": "progress", "offset": -1}
    )
    assert r.status_code == 422


def test_token_required_when_configured(tmp_path: Path, database: str):
    with make_client(tmp_path, database, token="s3cret-token") as c:
        for method, path in (
            ("post", "/api/v1/checkin"),
            ("get", "/api/v1/devices"),
            ("get", "/api/v1/status"),
            ("get", "/api/v1/firmware/1.1.0/slot-a.bin"),
            ("post", "/api/v1/sync"),
            ("get", "/api/v1/updates"),
            ("post", "/api/v1/report"),
        ):
            r = c.request(method, path, json=checkin_body())
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]
            r = c.request(method, path, json=checkin_body(), headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401, path
        ok = c.post("/api/v1/checkin", json=checkin_body(), headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["update"] is True
        assert c.get("/openapi.json").status_code == 200  # the schema itself is public


def lan_config(tmp_path: Path, token: str | None, operator_token: str | None = "op-token",
               database: str | None = None) -> FotaConfig:
    return FotaConfig(
        root=tmp_path,
        server=ServerConfig(host="0.0.0.0", port=8080, token=token, operator_token=operator_token,
                            database_url=database),
        state_dir=tmp_path / ".fota",
        firmware_dir=tmp_path / "fw",
        db_path=tmp_path / "db.sqlite",
    )


def test_lan_needs_a_token(tmp_path: Path, database: str):
    with pytest.raises(
        ConfigError, match=r"listening on 0.0.0.0 \(beyond loopback\) requires a device token"
    ):
        build_app(lan_config(tmp_path, None), sync=False)
    for host in ("192.168.1.20", "::"):
        with pytest.raises(ConfigError):
            check_listen(lan_config(tmp_path, None).with_server(host=host))
    check_listen(lan_config(tmp_path, None, None).with_server(host="127.0.0.1"))  # loopback: optional
    # the app built for the LAN enforces its tokens on every route
    with TestClient(build_app(lan_config(tmp_path, "lan-token", database=database), sync=False)) as c:
        assert c.get("/api/v1/status").status_code == 401
        assert c.get("/api/v1/status", headers={"Authorization": "Bearer lan-token"}).status_code == 403
        assert c.get("/api/v1/status", headers={"Authorization": "Bearer op-token"}).status_code == 200


def test_token_over_real_http(tmp_path: Path, database: str):
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=database, token="tok"))
    with LiveServer(app) as srv:
        assert httpx.post(srv.url + "/api/v1/checkin", json=checkin_body()).status_code == 401
        r = httpx.post(
            srv.url + "/api/v1/checkin", json=checkin_body(), headers={"Authorization": "Bearer tok"}
        )
        assert r.status_code == 200 and r.json()["update"] is True
        r = httpx.get(
            srv.url + r.json()["url"], headers={"Authorization": "Bearer tok", "Range": "bytes=1000-"}
        )
        assert r.status_code == 206 and r.headers["content-range"].startswith("bytes 1000-")


def test_openapi_documents_the_contract(client: TestClient):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/api/v1/checkin",
        "/api/v1/report",
        "/api/v1/firmware/{version}/{name}",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}",
        "/api/v1/updates",
        "/api/v1/sync",
        "/api/v1/status",
    ):
        assert p in paths, p
    assert {"200", "206", "416"} <= set(paths["/api/v1/firmware/{version}/{name}"]["get"]["responses"])
    schemas = spec["components"]["schemas"]
    assert {"device_id", "running_slot", "running_version", "slots"} <= set(schemas["CheckIn"]["properties"])
    assert set(spec["components"]["securitySchemes"]) == {"DeviceToken", "OperatorToken"}
    assert paths["/api/v1/checkin"]["post"]["security"] == [{"DeviceToken": []}]
    assert paths["/api/v1/sync"]["post"]["security"] == [{"OperatorToken": []}]
    assert {"401", "403", "413", "429"} <= set(paths["/api/v1/checkin"]["post"]["responses"])


def test_sync_route_without_s3_reports_disabled(client: TestClient):
    r = client.post("/api/v1/sync")
    assert r.status_code == 503 and r.json()["status"] == "disabled"
    assert "no S3 bucket configured" in r.json()["detail"]
    assert client.get("/api/v1/status").json()["last_sync"]["status"] == "disabled"
