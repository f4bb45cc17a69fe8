"""What the console's pages show, read from the HTML a server renders: the device list's filters
and pages, a device's history with the STM32's reasons, the releases with their signature state,
the rollouts with their counts and chart; and that nothing a device sends is taken as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fota_server.app import ServerSettings, create_app
from fota_server.console.releases import signature_state
from fota_server.firmware import FirmwareFolder
from fota_server.registry import Registry
from fota_server.trust import KeyRing
from fota_testkit.console import DEVICE, OP, dev, seed


@pytest.fixture
def c(settings: ServerSettings) -> TestClient:
    reg = Registry(settings.db_path)
    seed(reg, 120)
    reg.close()
    return TestClient(create_app(settings), headers=OP)


def rows(html: str) -> list[str]:
    return re.findall(r'<a href="/devices/([0-9a-f]{24})"', html)


def test_device_list_pages_and_filters(c: TestClient) -> None:
    page = c.get("/devices").text
    assert rows(page) == [dev(i) for i in range(1, 51)] and "120 devices match." in page
    nxt = re.search(r'href="([^"]+)" rel="next"', page)
    assert nxt is not None and 'rel="prev"' not in page
    page2 = c.get(nxt.group(1).replace("&amp;", "&")).text
    assert rows(page2) == [dev(i) for i in range(51, 101)] and 'rel="prev"' in page2
    failed_east = c.get("/devices", params={"group": "east", "state": "failed"}).text
    assert rows(failed_east) == [dev(i) for i in range(6, 121, 12)]
    assert '<option value="east" selected>' in failed_east
    assert rows(c.get("/devices", params={"q": dev(77)[-4:]}).text) == [dev(77)]
    assert "No device matches." in c.get("/devices", params={"version": "9.9.9"}).text
    r = c.get("/devices", params={"state": "exploded"})
    assert r.status_code == 422 and "exploded" in r.text
    assert c.get("/devices", params={"group": "a b"}).status_code == 422


def test_device_page_shows_slots_history_and_the_stm32s_reason(c: TestClient) -> None:
    html = c.get(f"/devices/{dev(3)}").text
    assert f"Device <span class=\"mono\">{dev(3)}</span>" in html
    assert "version 1.0.0 in slot A" in html and "group</dt><dd>west (reported by its bridge)" in html.lower()
    assert "REVERTED_NO_CONFIRM: the new image did not confirm" in html
    assert '<span class="badge reverted">reverted</span>' in html and "3.2 s" in html
    assert "STM32 refused BEGIN: ERR_VERSION" in c.get(f"/devices/{dev(6)}").text
    live = c.get(f"/devices/{dev(9)}").text
    assert 'data-live="device=' + dev(9) + '"' in live and "40% · writing the image" in live
    missing = c.get(f"/devices/{dev(999)}")
    assert missing.status_code == 404 and "never checked in" in missing.text


def test_device_page_shows_what_the_bridge_read_from_its_stm32(c: TestClient) -> None:
    slots = {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "valid", "version": "1.1.0"}}
    body = {"device_id": dev(501), "running_slot": "B", "running_version": "1.1.0", "slots": slots,
            "temp_centi": -512, "uptime_ms": 90_061_000, "security_counter": 3, "key_id": "3fa2c1d0"}
    assert c.post("/api/v1/checkin", json=body, headers=DEVICE).status_code == 200
    html = c.get(f"/devices/{dev(501)}").text
    for label, value in (("Temperature", "-5.12 °C"), ("Uptime", "1 d 1 h 1 min 1 s"),
                         ("Security counter", "3"), ("Signing key", "3fa2c1d0")):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in html, label
    # A bridge that does not send them (an older one): each is "not reported", none kept from before.
    health = ("temp_centi", "uptime_ms", "security_counter", "key_id")
    old = {k: v for k, v in body.items() if k not in health}
    assert c.post("/api/v1/checkin", json=old, headers=DEVICE).status_code == 200
    html = c.get(f"/devices/{dev(501)}").text
    assert html.count("</dt><dd>not reported</dd>") == 4
    record = c.get(f"/api/v1/devices/{dev(501)}").json()
    assert (record["temp_centi"], record["security_counter"], record["key_id"]) == (None, None, None)


@pytest.mark.parametrize(("field", "value"), [("temp_centi", 40_000), ("uptime_ms", -1), ("uptime_ms", 2**32),
                                              ("security_counter", -1), ("security_counter", 2**32),
                                              ("key_id", "3FA2C1D0"), ("key_id", "3fa2c1d"), ("key_id", 7)])
def test_a_bad_health_field_is_a_422_naming_it(c: TestClient, field: str, value: object) -> None:
    body = {"device_id": dev(502), "running_slot": "A", "running_version": "1.0.0",
            "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
            field: value}
    r = c.post("/api/v1/checkin", json=body, headers=DEVICE)
    assert r.status_code == 422 and field in r.text, r.text
    assert c.get(f"/api/v1/devices/{dev(502)}").status_code == 404      # nothing recorded


def test_what_a_device_sends_is_escaped(c: TestClient) -> None:
    body = {"device_id": dev(500), "running_slot": "A", "running_version": "1.0.0",
            "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
            "group": "g1"}
    offer = c.post("/api/v1/checkin", json=body, headers=DEVICE).json()
    assert offer["update"], offer
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    report = {"device_id": dev(500), "update_id": offer["update_id"], "stage": "result", "outcome": "failed",
              "reason": evil}
    r = c.post("/api/v1/report", headers=DEVICE, json=report)
    assert r.status_code == 200, r.text
    html = c.get(f"/devices/{dev(500)}").text
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_releases_show_sizes_hashes_and_the_signature_state(c: TestClient, settings: ServerSettings) -> None:
    html = c.get("/releases").text
    folder = FirmwareFolder(settings.firmware_dir)
    rel = folder.load()
    assert rel is not None
    for name, sha in rel.sha256.items():
        assert sha in html and f"<td>{name}</td><td class=\"num\">{len(rel.files[name])}</td>" in html
    # the fixture's server trusts no key: the column says why the signature does not count
    assert "not verified: no trusted release key is configured" in html
    path = folder.current_target()
    assert path is not None
    assert signature_state(path, KeyRing()).startswith("not verified")


def test_signature_state_names_a_good_and_a_missing_signature(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from fota_server.trust import load_key
    from fota_testkit.server import install_release

    key = Ed25519PrivateKey.generate()
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.3.0", key=key)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ring = KeyRing([load_key(raw.hex())])
    path = folder.current_target()
    assert path is not None
    assert re.fullmatch(r"signed, verified with key [0-9a-f]{16}", signature_state(path, ring))
    (path / "manifest.json.sig").unlink()
    assert "unsigned" in signature_state(path, ring)


def test_image_state_names_counter_key_and_the_signature_check(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from fota_lab.images import make_image
    from fota_server.console.releases import image_state
    from fota_server.trust import load_key
    from stm32_fota.signing import public_key_hash

    key = Ed25519PrivateKey.generate()
    ring = KeyRing([load_key(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())])
    image = make_image(1, "1.3.0", counter=4, key=key)
    assert image_state("slot-b.bin", image, ring) == \
        f"counter 4, key {public_key_hash(key)[:8]}, signature verified"
    assert image_state("slot-b.bin", image, KeyRing()).startswith("not verified: ")
    assert "which is not trusted" in image_state("slot-b.bin", image, KeyRing())
    assert image_state("slot-a.bin", image, ring).startswith("not verified: ")   # the wrong slot


def test_rollout_pages_show_stages_counts_and_the_chart(c: TestClient) -> None:
    r = c.post("/api/v1/rollouts", json={"version": "1.1.0", "name": "east first",
                                         "target": {"group": "east"},
                                         "stages": [{"percent": 50}, {"percent": 100}]})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    listing = c.get("/rollouts").text
    assert "east first" in listing and "group east" in listing and "1 of 2" in listing
    assert f'aria-label="Pause rollout {rid}"' in listing
    assert f'aria-label="Resume rollout {rid}"' not in listing
    page = c.get(f"/rollouts/{rid}").text
    assert "<svg" in page and "no device has finished yet" in page and "(current)" in page
    assert "operator" in page and "create" in page  # the history of transitions
    overview = c.get("/").text
    assert f"Rollout {rid}: east first" in overview and "<svg" in overview
    assert "120 devices" in overview and '<span class="badge reverted">reverted</span>' in overview
    assert c.get("/rollouts/77").status_code == 404
