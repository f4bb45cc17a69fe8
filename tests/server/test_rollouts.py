"""Rollouts through the API, on both registry backends: stages, automatic stop and advance,
operator actions, groups, pins, windows, retries, and the rule for devices outside every rollout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_server.fleet import Fleet as FleetStore
from fota_server.fleet_store import StageFull
from fota_server.registry import Enrolment, Registry
from fota_testkit.server import install_release

OP = {"Authorization": "Bearer op-token"}
DEVICE = {"Authorization": "Bearer dev-token"}
NOON = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 12 * 3600  # a UTC noon


def dev(i: int) -> str:
    return f"{i:024x}"


class Fleet:
    """A server with a virtual clock, and the bridges' side of the protocol."""

    def __init__(self, client: TestClient, clock: list[float]) -> None:
        self.c = client
        self.clock = clock

    def checkin(self, i: int, version: str = "1.0.0", group: str | None = None,
                slot: str = "A") -> dict[str, Any]:
        other = "B" if slot == "A" else "A"
        body: dict[str, Any] = {"device_id": dev(i), "running_slot": slot, "running_version": version,
                                "slots": {slot: {"state": "valid", "version": version},
                                          other: {"state": "empty", "version": None}}}
        if group is not None:
            body["group"] = group
        r = self.c.post("/api/v1/checkin", json=body, headers=DEVICE)
        assert r.status_code == 200, r.text
        return r.json()

    def result(self, i: int, offer: dict[str, Any], outcome: str) -> dict[str, Any]:
        r = self.c.post("/api/v1/report", headers=DEVICE, json={
            "device_id": dev(i), "update_id": offer["update_id"], "stage": "result", "outcome": outcome,
            "reason": None if outcome == "confirmed" else "self-test failed: temperature sensor"})
        assert r.status_code == 200, r.text
        return r.json()

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("version", "1.1.0")
        body.setdefault("target", {"all": True})
        r = self.c.post("/api/v1/rollouts", json=body, headers=OP)
        assert r.status_code == 201, r.text
        return r.json()

    def show(self, rid: int) -> dict[str, Any]:
        r = self.c.get(f"/api/v1/rollouts/{rid}", headers=OP)
        assert r.status_code == 200, r.text
        return r.json()

    def act(self, rid: int, action: str, reason: str = "because", status: int = 200) -> dict[str, Any]:
        r = self.c.post(f"/api/v1/rollouts/{rid}/{action}", json={"reason": reason, "by": "ana"}, headers=OP)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def fleet(tmp_path: Path, database: str) -> Iterator[Fleet]:
    folder = FirmwareFolder(tmp_path / "firmware")
    install_release(folder, tmp_path, "1.1.0", body=2000)
    clock = [NOON]
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=database, token="dev-token",
                                    operator_token="op-token", clock=lambda: clock[0]))
    with TestClient(app) as c:
        yield Fleet(c, clock)


def test_percentage_stages_open_after_confirmations_and_soak(fleet: Fleet):
    for i in range(20):  # the registry knows the fleet: the stages' shares are exact
        fleet.checkin(i, version="1.0.0")
    r = fleet.create(stages=[{"percent": 10}, {"percent": 50}, {"percent": 100}], soak_s=600,
                     success_threshold=1.0, by="ana", reason="bench passed")
    assert r["state"] == "active" and r["current_stage"] == 0 and r["created_by"] == "ana"
    offers = {i: fleet.checkin(i) for i in range(20)}
    first = [i for i, o in offers.items() if o["update"]]
    assert len(first) == 2  # 10 % of 20
    assert all("not in an open stage of rollout" in o["reason"] for i, o in offers.items() if i not in first)
    assert fleet.checkin(first[0])["update_id"] == offers[first[0]]["update_id"]  # the same offer again
    for i in first:
        fleet.result(i, offers[i], "confirmed")
    shown = fleet.show(r["id"])
    assert shown["stages"][0] | {"opened_at": None} == {
        "stage": 0, "percent": 10, "count": None, "expected": 2, "devices": 2, "confirmed": 2, "failed": 0,
        "failure_rate": 0.0, "needed": 2, "opened_at": None}
    assert shown["current_stage"] == 0 and shown["next_stage_at"] is not None  # soaking
    assert not any(fleet.checkin(i)["update"] for i in range(20) if i not in first)
    fleet.clock[0] += 601
    second = [i for i in range(20) if i not in first and fleet.checkin(i)["update"]]
    assert len(second) == 8  # 50 % of 20, less the first stage's two
    shown = fleet.show(r["id"])
    assert shown["current_stage"] == 1
    assert shown["transitions"][-1] | {"at": None} == {
        "at": None, "actor": "server", "action": "advance", "from_state": "active", "to_state": "active",
        "stage": 1, "reason": "stage 1 succeeded and soaked 600 s"}
    # devices already on the release are not offered it again, nor counted again
    for i in first:
        assert "up to date" in fleet.checkin(i, version="1.1.0", slot="B")["reason"]
    assert fleet.show(r["id"])["devices"] == 10
    # the stage is for 8 devices: one confirmation does not open the last stage
    fleet.result(second[0], fleet.checkin(second[0]), "confirmed")
    fleet.clock[0] += 601
    shown = fleet.show(r["id"])
    assert (shown["current_stage"], shown["next_stage_at"], shown["stages"][1]["needed"]) == (1, None, 8)
    for i in second[1:]:
        fleet.result(i, fleet.checkin(i), "confirmed")
    shown = fleet.show(r["id"])  # the soak time is over already: the last stage opens at once
    assert shown["current_stage"] == 2 and shown["transitions"][-1]["reason"].startswith("stage 2 succeeded")


def test_the_rollout_pauses_itself_at_the_failure_threshold(fleet: Fleet):
    r = fleet.create(stages=[{"count": 6}, {"count": 20}], failure_threshold=0.3, min_sample=4,
                     max_consecutive_failures=0)
    offers = {i: fleet.checkin(i) for i in range(8)}
    admitted = [i for i, o in offers.items() if o["update"]]
    assert admitted == list(range(6))
    assert "stage 1 of 2 (6 devices) of rollout 1 of 1.1.0 has all its devices" in offers[6]["reason"]
    fleet.result(0, offers[0], "confirmed")
    fleet.result(1, offers[1], "reverted")
    fleet.result(2, offers[2], "confirmed")
    assert fleet.show(r["id"])["state"] == "active"  # 1 of 3: the sample is too small
    fleet.result(3, offers[3], "failed")  # 2 of 4 = 50 % > 30 %
    shown = fleet.show(r["id"])
    assert shown["state"] == "paused" and shown["failed"] == 2 and shown["failure_rate"] == 0.5
    assert shown["transitions"][-1]["actor"] == "server"
    assert shown["transitions"][-1]["reason"] == ("stage 1: 2 of 4 finished devices failed (50%), over the "
                                                  "threshold of 30%")
    # paused: nothing new, not even to the admitted devices that have not started
    assert fleet.checkin(4)["reason"] == "rollout 1 of 1.1.0 is paused"
    fleet.act(r["id"], "pause", status=409)
    resumed = fleet.act(r["id"], "resume", reason="sensor batch replaced")
    assert resumed["state"] == "active" and resumed["transitions"][-1]["actor"] == "ana"
    assert fleet.checkin(4)["update"]
    devices = fleet.c.get(f"/api/v1/rollouts/{r['id']}/devices?status=reverted", headers=OP).json()
    assert [(d["device_id"], d["stage"], d["status"]) for d in devices["items"]] == [(dev(1), 0, "reverted")]
    assert fleet.c.get(f"/api/v1/rollouts/{r['id']}/devices", headers=OP).json()["total"] == 6
    history = fleet.c.get(f"/api/v1/devices/{dev(3)}", headers=OP).json()["updates"]
    assert history[0]["rollout_id"] == r["id"] and history[0]["status"] == "failed"
    assert fleet.c.get("/api/v1/rollouts/9/devices", headers=OP).status_code == 404
    aborted = fleet.act(r["id"], "abort", reason="enough")
    assert aborted["state"] == "aborted"
    assert [t["action"] for t in aborted["transitions"]] == ["create", "pause", "resume", "abort"]
    assert fleet.checkin(5)["reason"].startswith("release 1.1.0 is being rolled out")
    for action in ("pause", "resume", "abort", "advance"):
        fleet.act(r["id"], action, status=409)


def test_consecutive_failures_pause_and_the_operator_advances(fleet: Fleet):
    r = fleet.create(stages=[{"count": 3}, {"count": 3}], max_consecutive_failures=2, min_sample=100)
    offers = {i: fleet.checkin(i) for i in range(3)}
    fleet.result(0, offers[0], "reverted")
    assert fleet.show(r["id"])["state"] == "active"
    fleet.result(1, offers[1], "failed")
    shown = fleet.show(r["id"])
    assert shown["state"] == "paused"
    assert shown["transitions"][-1]["reason"] == "2 failures in a row (limit 2)"
    advanced = fleet.act(r["id"], "advance", reason="the failures were the power supply")
    assert advanced["current_stage"] == 1 and advanced["state"] == "paused"
    fleet.act(r["id"], "resume")
    assert all(fleet.checkin(i)["update"] for i in (3, 4, 5)) and not fleet.checkin(6)["update"]
    completed = fleet.act(r["id"], "advance", reason="ship it")
    assert completed["state"] == "completed"
    assert fleet.checkin(7)["reason"].endswith("has all its devices")  # counts stay counts


def test_devices_outside_every_rollout_get_nothing_of_its_release(fleet: Fleet):
    assert fleet.checkin(1)["update"]  # no rollout: the release for everyone
    fleet.create(target={"group": "east"}, stages=[{"percent": 100}])
    assert fleet.checkin(2, group="east")["update"]
    west = fleet.checkin(3, group="west")
    assert west == {"update": False,
                    "reason": "release 1.1.0 is being rolled out; this device is in none of its rollouts"}
    # the open offer that device 1 got before the rollout is superseded once the rollout holds it
    before = fleet.checkin(1, group="east")
    assert before["update"]
    listed = fleet.c.get("/api/v1/rollouts", headers=OP).json()["items"]
    assert listed[0]["devices"] == 2
    assert fleet.c.get("/api/v1/rollouts?state=paused", headers=OP).json()["items"] == []


def test_the_operators_group_wins_and_pins_hold(fleet: Fleet):
    fleet.create(target={"group": "east"}, stages=[{"percent": 100}])
    r = fleet.c.put(f"/api/v1/devices/{dev(1)}/group", json={"group": "east", "by": "ana"}, headers=OP)
    assert r.status_code == 200 and r.json()["group"] == "east"
    assert fleet.checkin(1, group="west")["update"]
    settings = fleet.c.get(f"/api/v1/devices/{dev(1)}/settings", headers=OP).json()
    assert settings | {"updated_at": None} == {
        "device_id": dev(1), "group": "east", "group_set_by_operator": "east", "reported_group": "west",
        "pin": None, "updated_at": None, "updated_by": "ana"}
    fleet.c.delete(f"/api/v1/devices/{dev(1)}/group", headers=OP)
    assert not fleet.checkin(1, group="west")["update"]
    # a device pin, then a group pin
    fleet.c.put(f"/api/v1/devices/{dev(2)}/pin", json={"version": "1.0.0"}, headers=OP)
    assert fleet.checkin(2, group="east")["reason"] == "held at 1.0.0 by a pin"
    fleet.c.delete(f"/api/v1/devices/{dev(2)}/pin", headers=OP)
    assert fleet.checkin(2, group="east")["update"]
    fleet.c.put("/api/v1/groups/east/pin", json={"version": "1.0.0"}, headers=OP)
    assert fleet.checkin(4, group="east")["reason"] == "held at 1.0.0 by a pin"
    groups = fleet.c.get("/api/v1/groups", headers=OP).json()["items"]
    assert {g["group"]: (g["devices"], g["pin"]) for g in groups} == {"east": (2, "1.0.0"), "west": (1, None)}
    fleet.c.delete("/api/v1/groups/east/pin", headers=OP)
    assert fleet.checkin(4, group="east")["update"]


def test_maintenance_windows_follow_the_clock(fleet: Fleet):
    r = fleet.c.put("/api/v1/groups/night/window", json={"start": "22:00", "end": "04:00"}, headers=OP)
    assert r.json()["window"] == {"start": "22:00", "end": "04:00"}
    assert fleet.checkin(1, group="night")["reason"] == ("outside the maintenance window of group night "
                                                         "(22:00-04:00 UTC)")
    assert fleet.checkin(2, group="day")["update"]  # other groups: any time
    fleet.clock[0] += 11 * 3600 + 30 * 60  # 23:30 UTC
    assert fleet.checkin(1, group="night")["update"]
    fleet.clock[0] += 5 * 3600  # 04:30
    assert "outside the maintenance window" in fleet.checkin(3, group="night")["reason"]
    fleet.c.delete("/api/v1/groups/night/window", headers=OP)
    assert fleet.checkin(3, group="night")["update"]


def test_a_reverted_release_is_offered_again_only_after_a_retry(fleet: Fleet):
    offer = fleet.checkin(1)
    fleet.result(1, offer, "reverted")
    assert "was reverted on this device before" in fleet.checkin(1)["reason"]
    r = fleet.c.post(f"/api/v1/devices/{dev(1)}/retry", json={"version": "1.1.0", "reason": "new sensor"},
                     headers=OP)
    assert r.status_code == 200 and r.json()["after_update_id"] == offer["update_id"]
    again = fleet.checkin(1)
    assert again["update"] and again["update_id"] != offer["update_id"]
    fleet.result(1, again, "reverted")
    assert "was reverted" in fleet.checkin(1)["reason"]  # one more attempt, not a free pass
    r = fleet.c.post(f"/api/v1/devices/{dev(2)}/retry", json={"version": "1.1.0", "reason": "x"}, headers=OP)
    assert r.status_code == 409 and "has not reverted 1.1.0" in r.json()["detail"]


def test_a_change_made_by_another_server_process_counts_at_the_next_check_in(fleet: Fleet, tmp_path: Path,
                                                                              database: str):
    r = fleet.create(stages=[{"percent": 100}])
    other = create_app(ServerSettings(firmware_dir=tmp_path / "firmware", db_path=database,
                                      token="dev-token", operator_token="op-token", sync_on_start=False))
    with TestClient(other) as c2:
        assert fleet.checkin(1)["update"]
        r2 = c2.post(f"/api/v1/rollouts/{r['id']}/pause", json={"reason": "from the other process"},
                     headers=OP)
        assert r2.status_code == 200
    assert fleet.checkin(2)["reason"] == "rollout 1 of 1.1.0 is paused"


@pytest.mark.parametrize(("body", "message"), [
    ({"stages": [{"percent": 10}, {"count": 5}]}, "stages are all percentages or all counts"),
    ({"stages": [{"percent": 50}, {"percent": 10}]}, "stage percentages must increase (given: 50, 10)"),
    ({"stages": [{"percent": 0}]}, "stages.0.percent: Input should be greater than 0"),
    ({"stages": [{"percent": 10, "count": 3}]}, "a stage is exactly one of percent, count"),
    ({"stages": []}, "stages: List should have at least 1 item"),
    ({"target": {}}, "a target is exactly one of all, group, devices (given: none)"),
    ({"target": {"all": True, "group": "east"}}, "(given: all, group)"),
    ({"target": {"group": "no spaces"}}, "target.group: String should match pattern"),
    ({"target": {"devices": [dev(1), dev(1)]}}, "the device list names a device twice"),
    ({"version": "1.1"}, "version: String should match pattern"),
    ({"failure_threshold": 1.5}, "failure_threshold: Input should be less than 1"),
    ({"soak_s": -1}, "soak_s: Input should be greater than or equal to 0"),
    ({"colour": "red"}, "colour: unknown field"),
])
def test_bad_rollouts_are_refused_naming_the_field(fleet: Fleet, body: dict[str, Any], message: str):
    full = {"version": "1.1.0", "target": {"all": True}, "stages": [{"percent": 100}], **body}
    r = fleet.c.post("/api/v1/rollouts", json=full, headers=OP)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_fleet_routes_need_the_operator_token_and_name_what_is_wrong(fleet: Fleet):
    assert fleet.c.get("/api/v1/rollouts").status_code == 401
    assert fleet.c.get("/api/v1/rollouts", headers=DEVICE).status_code == 403
    r = fleet.c.get("/api/v1/rollouts/99", headers=OP)
    assert r.status_code == 404 and r.json()["detail"] == "rollout 99 does not exist"
    r = fleet.c.post("/api/v1/rollouts/1/pause", json={}, headers=OP)
    assert r.status_code == 422 and "reason: Field required" in r.json()["detail"]
    r = fleet.c.put("/api/v1/groups/east/window", json={"start": "25:00", "end": "04:00"}, headers=OP)
    assert r.status_code == 422 and "'25:00' is not a time of day HH:MM" in r.json()["detail"]
    r = fleet.c.put("/api/v1/groups/east/window", json={"start": "04:00", "end": "04:00"}, headers=OP)
    assert r.status_code == 422 and "start and end are the same time" in r.json()["detail"]
    r = fleet.c.post("/api/v1/checkin", headers=DEVICE, json={
        "device_id": dev(1), "running_slot": "A", "running_version": "1.0.0", "group": "x y",
        "slots": {"A": {"state": "valid"}, "B": {"state": "empty"}}})
    assert r.status_code == 422 and "group: String should match pattern" in r.json()["detail"]
    for route in (f"/api/v1/devices/{dev(1)}/group", f"/api/v1/devices/{dev(1)}/pin",
                  "/api/v1/groups/east/pin", "/api/v1/groups/east/window"):
        # A NUL in who-acts (PostgreSQL text cannot hold it) is a named 422 on both backends, not a 500.
        r = fleet.c.delete(route, params={"by": "ana\x00"}, headers=OP)
        assert r.status_code == 422 and "by: String should match pattern" in r.json()["detail"], route


def test_the_fleet_routes_are_documented(fleet: Fleet):
    schema = fleet.c.get("/openapi.json").json()
    paths = schema["paths"]
    for path, method in [("/api/v1/rollouts", "post"), ("/api/v1/rollouts", "get"),
                         ("/api/v1/rollouts/{rollout_id}", "get"),
                         ("/api/v1/rollouts/{rollout_id}/pause", "post"),
                         ("/api/v1/rollouts/{rollout_id}/resume", "post"),
                         ("/api/v1/rollouts/{rollout_id}/abort", "post"),
                         ("/api/v1/rollouts/{rollout_id}/advance", "post"), ("/api/v1/groups", "get"),
                         ("/api/v1/groups/{group}/pin", "put"), ("/api/v1/groups/{group}/window", "put"),
                         ("/api/v1/devices/{device_id}/group", "put"),
                         ("/api/v1/devices/{device_id}/pin", "put"),
                         ("/api/v1/devices/{device_id}/retry", "post")]:
        op = paths[path][method]
        assert op["security"] == [{"OperatorToken": []}], path
    create = schema["components"]["schemas"]["RolloutCreate"]
    assert create["examples"][0]["stages"] == [{"percent": 10}, {"percent": 50}, {"percent": 100}]
    assert "RolloutReply" in schema["components"]["schemas"]
    assert "group" in schema["components"]["schemas"]["CheckIn"]["properties"]


def test_a_count_stage_admits_its_count_and_no_more_across_server_processes(database: str):
    """Six registries (server processes, here threads with their own connections) offer a stage of
    five devices to 24 devices at once: exactly five are admitted, each counted once."""
    regs = [Registry(database) for _ in range(6)]
    made = FleetStore(regs[0]).create_rollout(
        {"version": "1.1.0", "target": {"all": True}, "stages": [{"count": 5}, {"count": 50}]}, "ana")
    enrolment = Enrolment(made["id"], None, 0, 5)
    slots = {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}
    barrier = threading.Barrier(len(regs))
    admitted: list[str] = []
    errors: list[BaseException] = []

    def worker(k: int, reg: Registry) -> None:
        try:
            barrier.wait(10)
            for i in range(k, 24, len(regs)):
                reg.record_checkin(dev(i), "A", "1.0.0", slots)
                try:
                    reg.open_update(dev(i), "1.1.0", "B", "slot-b.bin", 10, "ab" * 32, False, "A", "1.0.0",
                                    enrolment)
                    admitted.append(dev(i))
                except StageFull:
                    pass
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k, r)) for k, r in enumerate(regs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(admitted) == 5
    shown = FleetStore(regs[0]).rollout(made["id"])
    assert shown["devices"] == 5 and shown["stages"][0]["devices"] == 5
    assert sum(regs[0].count_updates(d) for d in admitted) == 5 and regs[0].count_updates() == 5
    for r in regs:
        r.close()
