"""Limits checked before any work (in the application): body size (announced and while streaming),
the token before the body, URL and header size, unknown fields, the per-device rate limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_server.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URL_BYTES
from fota_testkit.server import install_release

DEVICE = "limits-device-token"
OPERATOR = "limits-operator-token"
DEV = "0123456789abcdef01234567"
AUTH = {"Authorization": f"Bearer {DEVICE}"}


def checkin(device: str = DEV) -> dict[str, Any]:
    return {
        "device_id": device,
        "running_slot": "A",
        "running_version": "1.0.0",
        "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
    }


def make_app(tmp_path: Path, **settings: Any) -> Any:
    tmp_path.mkdir(exist_ok=True)
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    defaults = {"firmware_dir": folder.root, "db_path": tmp_path / "db", "token": DEVICE,
                "operator_token": OPERATOR}
    return create_app(ServerSettings(**(defaults | settings)))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path)) as c:
        yield c


def test_body_over_the_limit_is_413_before_it_is_read(client: TestClient):
    big = json.dumps({**checkin(), "pad": "x" * MAX_BODY_BYTES}).encode()
    r = client.post("/api/v1/checkin", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and f"at most {MAX_BODY_BYTES}" in r.json()["detail"]
    assert (
        client.get(f"/api/v1/devices/{DEV}", headers={"Authorization": f"Bearer {OPERATOR}"}).status_code
        == 404
    )
    r = client.post("/api/v1/checkin", content=b"{}", headers={**AUTH, "Content-Length": "12x"})
    assert r.status_code == 400 and "Content-Length" in r.json()["detail"]


def test_body_without_length_is_cut_at_the_limit(tmp_path: Path):
    """A body without Content-Length (chunked) is counted as the application reads it: 413 once
    it passes the limit, and not one more piece is asked for. (At the ASGI level, as uvicorn calls
    the application: the test client would buffer the whole body first.)"""
    app = make_app(tmp_path)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b" " * 1024, "more_body": True}  # endless

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/checkin",
        "raw_path": b"/api/v1/checkin",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {DEVICE}".encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(app(scope, receive, send))
    assert pulled == MAX_BODY_BYTES // 1024 + 1
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 413 and b"longer than" in sent[1]["body"]


def test_small_chunked_body_still_works(client: TestClient):
    body = json.dumps(checkin()).encode()
    r = client.post(
        "/api/v1/checkin",
        content=iter([body[:10], body[10:]]),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["update"] is True


def test_token_is_checked_before_the_body(client: TestClient):
    """No token and a body that is too large and not JSON: 401, the body was never looked at."""
    r = client.post("/api/v1/checkin", content=b"[{}," * MAX_BODY_BYTES)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post("/api/v1/checkin", content=b"not json", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_url_and_header_limits(client: TestClient):
    r = client.get("/api/v1/status?" + "a" * MAX_URL_BYTES, headers={"Authorization": f"Bearer {OPERATOR}"})
    assert r.status_code == 414 and "URL" in r.json()["detail"]
    r = client.get("/api/v1/firmware/1.1.0/slot-a.bin", headers={**AUTH, "X-Pad": "p" * MAX_HEADER_BYTES})
    assert r.status_code == 431 and "headers" in r.json()["detail"]
    r = client.get("/api/v1/firmware/1.1.0/slot-a.bin", headers={**AUTH, "X-Pad": "p" * 1000})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/checkin", {**checkin(), "firmware_hint": "x"}, "firmware_hint"),
        (
            "/api/v1/checkin",
            {
                **checkin(),
                "slots": {"A": {"state": "valid", "version": "1.0.0", "crc": 1}, "B": {"state": "empty"}},
            },
            "slots.A.crc",
        ),
        ("/api/v1/report", {"device_id": DEV, "update_id": 1, "stage": "progress", "ofset": 5}, "ofset"),
    ],
)
def test_unknown_fields_are_422_naming_them(client: TestClient, path: str, body: dict[str, Any], field: str):
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == 422
    assert f"{field}: unknown field" in r.json()["detail"], r.json()


def test_rate_limit_per_device_with_retry_after(tmp_path: Path):
    # The sliding window's counters roll over on the hour: keep the test inside one window.
    to_next_hour = 3600 - time.time() % 3600
    if to_next_hour < 5:
        time.sleep(to_next_hour + 0.1)
    with TestClient(make_app(tmp_path, device_rate="5/hour")) as c:
        first = c.post("/api/v1/checkin", json=checkin(), headers=AUTH).json()
        for _ in range(3):
            assert c.post("/api/v1/checkin", json=checkin(), headers=AUTH).status_code == 200
        report = {"device_id": DEV, "update_id": first["update_id"], "stage": "progress", "offset": 10}
        assert c.post("/api/v1/report", json=report, headers=AUTH).status_code == 200  # the 5th
        for path, body in (("/api/v1/checkin", checkin()), ("/api/v1/report", report)):
            r = c.post(path, json=body, headers=AUTH)
            assert r.status_code == 429, path
            assert 1 <= int(r.headers["retry-after"]) <= 3600
            assert DEV in r.json()["detail"] and "5/hour" in r.json()["detail"]
        # another device is not affected
        assert c.post("/api/v1/checkin", json=checkin("ab" * 12), headers=AUTH).status_code == 200
        # a refused request is not counted and changes nothing
        dev = c.get(f"/api/v1/devices/{DEV}", headers={"Authorization": f"Bearer {OPERATOR}"}).json()
        assert dev["checkins"] == 4 and dev["updates"][0]["offset"] == 10


@pytest.mark.parametrize("rate", ["lots", "0/minute", "5/fortnight", "5/0 seconds", "-1/hour"])
def test_malformed_rate_is_a_clear_error(tmp_path: Path, rate: str):
    with pytest.raises(ValueError, match=f"malformed rate limit '{rate}'"):
        make_app(tmp_path, device_rate=rate)


def test_retry_after_is_when_the_next_request_goes_through(tmp_path: Path):
    with TestClient(make_app(tmp_path, device_rate="2/second")) as c:
        statuses = [c.post("/api/v1/checkin", json=checkin(), headers=AUTH) for _ in range(3)]
        refused = next((r for r in statuses if r.status_code == 429), None)
        if refused is None:  # the three straddled a window: the fourth is refused
            refused = c.post("/api/v1/checkin", json=checkin(), headers=AUTH)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        time.sleep(1.0)
        assert c.post("/api/v1/checkin", json=checkin(), headers=AUTH).status_code == 200


def test_two_servers_sharing_a_database_share_each_device_budget(tmp_path: Path, database: str):
    # The counters roll over on the hour: keep the test inside one window.
    to_next_hour = 3600 - time.time() % 3600
    if to_next_hour < 5:
        time.sleep(to_next_hour + 0.1)
    one, two = (make_app(tmp_path / name, device_rate="3/hour", db_path=database) for name in ("one", "two"))
    with TestClient(one) as c1, TestClient(two) as c2:
        for _ in range(3):
            assert c1.post("/api/v1/checkin", json=checkin(), headers=AUTH).status_code == 200
        r = c2.post("/api/v1/checkin", json=checkin(), headers=AUTH)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 3600
        assert "3/hour" in r.json()["detail"]
        assert c1.post("/api/v1/checkin", json=checkin(), headers=AUTH).status_code == 429
        # another device has its own budget, on either server
        assert c2.post("/api/v1/checkin", json=checkin("ab" * 12), headers=AUTH).status_code == 200
        dev = c2.get(f"/api/v1/devices/{DEV}", headers={"Authorization": f"Bearer {OPERATOR}"}).json()
        assert dev["checkins"] == 3  # the refused check-ins changed nothing
