"""The demo's fleet (fota_lab.fleet): STM32 twins behind the reference master, checking in with a
real server; a rollout that some boards cannot confirm pauses itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from fota_lab.fleet import DeviceClient, FleetDevice
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.e2e import make_release
from fota_testkit.server import LiveServer
from stm32_fota.build import BuildResult
from stm32_fota.release import check_build, make_manifest, signed_manifest
from stm32_fota.signing import public_key_hash

DEVICE_TOKEN, OPERATOR_TOKEN = "fleet-device-token", "fleet-operator-token"
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def server(fw_build: BuildResult, tmp_path: Path) -> Iterator[LiveServer]:
    folder = FirmwareFolder(tmp_path / "firmware")
    files = check_build(make_release(fw_build.build_dir, tmp_path / "r1.2.0", "1.2.0"))
    key = Ed25519PrivateKey.generate()
    raw, signature = signed_manifest(make_manifest(files, "test", False, public_key_hash(key)), key)
    folder.install(files.version, {**files.images, "version.txt": files.version_text}, raw, signature)
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "server.db",
                                    token=DEVICE_TOKEN, operator_token=OPERATOR_TOKEN, sync_on_start=False))
    with LiveServer(app) as live:
        yield live


@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_a_rollout_that_some_twins_cannot_confirm_pauses_itself(fw_build: BuildResult, server: LiveServer):
    api = TestClient(server.server.config.app)
    r = api.post("/api/v1/rollouts", headers=OP, json={
        "version": "1.2.0", "target": {"group": "west"}, "stages": [{"count": 2}, {"count": 10}],
        "success_threshold": 1.0, "failure_threshold": 0.5, "min_sample": 4, "max_consecutive_failures": 2})
    assert r.status_code == 201, r.text
    fleet = [FleetDevice.start(n, fw_build.build_dir, "west", faulty=n in (3, 4)) for n in range(1, 6)]
    fleet.append(FleetDevice.start(6, fw_build.build_dir, "east"))
    client = DeviceClient(server.url, DEVICE_TOKEN)
    cycles = [d.cycle(client) for d in fleet]
    assert [(c.outcome, c.after, c.slot) for c in cycles[:4]] == [
        ("confirmed", "1.2.0", "B"), ("confirmed", "1.2.0", "B"), ("reverted", "1.0.0", "A"),
        ("reverted", "1.0.0", "A")]
    assert cycles[2].reason == "REVERTED_WATCHDOG"
    assert (cycles[4].offered, cycles[4].reason) == (False, "rollout 1 of 1.2.0 is paused")
    assert cycles[5].reason == "release 1.2.0 is being rolled out; this device is in none of its rollouts"
    shown: dict[str, Any] = api.get("/api/v1/rollouts/1", headers=OP).json()
    assert shown["state"] == "paused" and shown["current_stage"] == 1
    assert [(s["devices"], s["confirmed"], s["failed"]) for s in shown["stages"]] == [(2, 2, 0), (2, 0, 2)]
    assert [(t["actor"], t["action"], t["reason"]) for t in shown["transitions"][1:]] == [
        ("server", "advance", "stage 1 succeeded and soaked 0 s"),
        ("server", "pause", "2 failures in a row (limit 2)")]
    # what the server recorded of a reverted twin: the STM32's reason and where it runs
    history = api.get(f"/api/v1/devices/{fleet[2].device_id}", headers=OP).json()["updates"]
    assert (history[0]["outcome"], history[0]["reason"], history[0]["result_version"]) == (
        "reverted", "REVERTED_WATCHDOG", "1.0.0")
    assert fleet[2].board.adc.stuck and not fleet[0].board.adc.stuck
