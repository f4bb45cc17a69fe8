"""``invoke rollout ...`` as an operator runs it (a subprocess) against a real server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.server import LiveServer, install_release
from stm32_fota.rollouts import RolloutError, create_body, stages

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "operator-secret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("rollout-task")
    folder = FirmwareFolder(tmp / "firmware")
    install_release(folder, tmp, "1.2.0", body=2000)
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp / "server.db", token="device-token",
                                    operator_token=TOKEN, sync_on_start=False))
    with LiveServer(app) as live:
        yield live


def invoke(args: list[str], tmp_path: Path, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fota.toml"
    config.write_text("")  # never the developer's own fota.toml
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOTA_")}
    env |= {"FOTA_CONFIG": str(config), "FOTA_STATE_DIR": str(tmp_path / "state"), "USER": "ana"}
    if token:
        env["FOTA_OPERATOR_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "invoke", "rollout", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_create_list_show_pause(server: LiveServer, tmp_path: Path):
    url = ["--server", server.url]
    made = invoke(["create", "--version", "1.2.0", "--group", "east", "--stages", "10,50,100", "--soak", "60",
                   "--reason", "bench passed", *url], tmp_path)
    assert made.returncode == 0, made.stderr
    assert "rollout 1: 1.2.0 to group - release 1.2.0 to group east" in made.stdout
    assert "by ana: bench passed" in made.stdout
    listed = invoke(["list", *url], tmp_path)
    assert listed.returncode == 0 and "   1  1.2.0     active     1/3 10%" in listed.stdout
    refused = invoke(["pause", "--id", "1", *url], tmp_path)
    assert refused.returncode == 1 and "rollout pause needs --reason TEXT" in refused.stderr
    paused = invoke(["pause", "--id", "1", "--reason", "sensor reports", *url], tmp_path)
    assert paused.returncode == 0 and "state paused" in paused.stdout
    again = invoke(["pause", "--id", "1", "--reason", "twice", *url], tmp_path)
    assert again.returncode == 1
    assert "HTTP 409: rollout 1 is paused: pause applies to active rollouts" in again.stderr
    assert "Traceback" not in again.stderr and TOKEN not in again.stdout + again.stderr
    shown = invoke(["show", "--id", "1", *url], tmp_path)
    assert "pause       active -> paused    stage 1  by ana: sensor reports" in shown.stdout


def test_wrong_token_and_no_server_are_named(server: LiveServer, tmp_path: Path):
    wrong = invoke(["list", "--server", server.url], tmp_path, token="not-the-token")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr and "FOTA_OPERATOR_TOKEN" in wrong.stderr
    down = invoke(["list", "--server", "http://127.0.0.1:9"], tmp_path)
    assert down.returncode == 1 and "is the server running?" in down.stderr
    bad = invoke(["frobnicate", "--server", server.url], tmp_path)
    assert bad.returncode == 1 and "unknown rollout action 'frobnicate'" in bad.stderr


def test_create_options_are_checked_before_any_request():
    assert stages("1%, 10 ,100") == [{"percent": 1.0}, {"percent": 10.0}, {"percent": 100.0}]
    with pytest.raises(RolloutError, match=r"--stages: 'ten' is not a percentage"):
        stages("ten")
    with pytest.raises(RolloutError, match=r"exactly one target: .* \(given: --all, --group\)"):
        create_body("1.2.0", "100", True, "east", "", "", None, None, None, None, None, "ana", "")
    with pytest.raises(RolloutError, match="--version is required"):
        create_body("", "100", True, "", "", "", None, None, None, None, None, "ana", "")
    body = create_body("1.2.0", "2n,5n", False, "", "a, b", "", 30, None, 0.5, None, 0, "ana", "")
    assert body == {"version": "1.2.0", "target": {"devices": ["a", "b"]},
                    "stages": [{"count": 2}, {"count": 5}], "by": "ana", "soak_s": 30,
                    "failure_threshold": 0.5, "max_consecutive_failures": 0}
