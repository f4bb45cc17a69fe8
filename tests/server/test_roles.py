"""Roles: the device token checks in, downloads and reports, nothing else; the operator token is
needed for sync, device and update lists and status; the LAN needs both, and different."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fota_formats.config import ConfigError, FotaConfig, ServerConfig, load_config
from fota_server.app import ServerSettings, create_app
from fota_server.auth import Tokens, role_for
from fota_server.firmware import FirmwareFolder
from fota_server.serve import check_listen
from fota_testkit.server import install_release

DEVICE = "role-device-token"
OPERATOR = "role-operator-token"
DEV = "0123456789abcdef01234567"
CHECKIN = {
    "device_id": DEV,
    "running_slot": "A",
    "running_version": "1.0.0",
    "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
}
DEVICE_ROUTES = [
    ("post", "/api/v1/checkin"),
    ("get", "/api/v1/firmware/1.1.0/slot-b.bin"),
    ("post", "/api/v1/report"),
]
OPERATOR_ROUTES = [
    ("get", "/api/v1/devices"),
    ("get", f"/api/v1/devices/{DEV}"),
    ("get", "/api/v1/updates"),
    ("get", "/api/v1/status"),
    ("post", "/api/v1/sync"),
    ("get", "/api/v1/not-a-route-yet"),  # unknown routes default to the operator
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_client(tmp_path: Path, device: str | None, operator: str | None) -> TestClient:
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    settings = ServerSettings(
        firmware_dir=folder.root, db_path=tmp_path / "db", token=device, operator_token=operator
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, DEVICE, OPERATOR) as c:
        yield c


def test_device_token_does_device_things_only(client: TestClient):
    offer = client.post("/api/v1/checkin", json=CHECKIN, headers=bearer(DEVICE)).json()
    assert offer["update"] is True
    assert client.get(offer["url"], headers=bearer(DEVICE)).status_code == 200
    report = {"device_id": DEV, "update_id": offer["update_id"], "stage": "progress", "offset": 1}
    assert client.post("/api/v1/report", json=report, headers=bearer(DEVICE)).status_code == 200
    for method, path in OPERATOR_ROUTES:
        r = client.request(method, path, headers=bearer(DEVICE))
        assert r.status_code == 403, path
        assert "needs the operator token" in r.json()["detail"]


def test_operator_token_does_operator_things_only(client: TestClient):
    client.post("/api/v1/checkin", json=CHECKIN, headers=bearer(DEVICE))
    assert client.get("/api/v1/devices", headers=bearer(OPERATOR)).json()["total"] == 1
    assert client.get(f"/api/v1/devices/{DEV}", headers=bearer(OPERATOR)).status_code == 200
    assert client.get("/api/v1/status", headers=bearer(OPERATOR)).json()["version"] == "1.1.0"
    assert client.post("/api/v1/sync", headers=bearer(OPERATOR)).status_code == 503  # no S3 here
    for method, path in DEVICE_ROUTES:
        r = client.request(method, path, json=CHECKIN, headers=bearer(OPERATOR))
        assert r.status_code == 403, path


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Basic cm9sZQ==", f"Token {OPERATOR}", "Bearer x"]
)
def test_missing_or_wrong_tokens_are_401(client: TestClient, header: str | None):
    headers = {"Authorization": header} if header is not None else {}
    for method, path in DEVICE_ROUTES + OPERATOR_ROUTES:
        r = client.request(method, path, json=CHECKIN, headers=headers)
        assert r.status_code == 401, (header, path)
        assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]


def test_public_pages_need_no_token(client: TestClient):
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_device_token_alone_never_opens_operator_routes(tmp_path: Path):
    """On loopback a server may run with the device token only: the operator routes stay closed."""
    with make_client(tmp_path, DEVICE, None) as c:
        assert c.post("/api/v1/checkin", json=CHECKIN, headers=bearer(DEVICE)).status_code == 200
        r = c.get("/api/v1/devices", headers=bearer(DEVICE))
        assert r.status_code == 401 and "no operator token configured" in r.json()["detail"]
        assert "FOTA_OPERATOR_TOKEN" in r.json()["detail"]


def test_no_tokens_on_loopback_leaves_everything_open(tmp_path: Path):
    with make_client(tmp_path, None, None) as c:
        assert c.post("/api/v1/checkin", json=CHECKIN).status_code == 200
        assert c.get("/api/v1/devices").status_code == 200


def test_every_route_is_enforced_with_the_role_it_documents(client: TestClient):
    """The middleware's role (role_for) and the security scheme in the schema agree, route by route."""
    spec = client.get("/openapi.json").json()
    seen = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            expected = {"device": "DeviceToken", "operator": "OperatorToken"}[role_for(path) or ""]
            assert operation["security"] == [{expected: []}], (path, method)
            seen += 1
    assert seen >= 9


def test_tokens_must_differ():
    with pytest.raises(ValueError, match="must differ"):
        Tokens("same", "same")


def lan(tmp_path: Path, token: str | None, operator: str | None, host: str = "0.0.0.0") -> FotaConfig:
    return FotaConfig(root=tmp_path, server=ServerConfig(host=host, token=token, operator_token=operator))


def test_lan_needs_both_tokens_and_different_ones(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"requires an operator token \(FOTA_OPERATOR_TOKEN"):
        check_listen(lan(tmp_path, DEVICE, None))
    with pytest.raises(ConfigError, match=r"requires a device token .* and an operator token"):
        check_listen(lan(tmp_path, None, None))
    with pytest.raises(ConfigError, match=r"requires a device token \(FOTA_SERVER_TOKEN"):
        check_listen(lan(tmp_path, None, OPERATOR))
    for host in ("0.0.0.0", "127.0.0.1"):
        with pytest.raises(ConfigError, match="are the same; the operator token must differ"):
            check_listen(lan(tmp_path, "one", "one", host))
    check_listen(lan(tmp_path, DEVICE, OPERATOR))
    check_listen(lan(tmp_path, None, None, "127.0.0.1"))


def test_operator_token_from_file_and_environment(tmp_path: Path):
    (tmp_path / "fota.toml").write_text('[server]\noperator_token = "from-file"\n')
    assert load_config(env={}, cwd=tmp_path).server.operator_token == "from-file"
    cfg = load_config(env={"FOTA_OPERATOR_TOKEN": "from-env"}, cwd=tmp_path)
    assert cfg.server.operator_token == "from-env"
    assert "from-env" not in repr(cfg)  # never printed
