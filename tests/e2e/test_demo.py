"""`invoke demo`: the whole story runs to a PASS summary (builds included), and nothing is left
running afterwards: not after --keep, not after a failed step, not after Ctrl-C."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from fota_lab import demo as demo_mod
from fota_lab.lab import Lab
from stm32_fota.build import BuildResult
from stm32_fota.esp32 import Esp32Error


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"      # a zombie has ended


class Seen:
    """What was running while the lab was up: the server, the S3 endpoint and the Node runner."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.port = ""
        self.url = ""
        self.operator_token: str | None = None

    def note(self, lab: Lab) -> None:
        assert lab.server.proc is not None and lab.s3 is not None and lab.esp is not None
        self.pids = [lab.server.proc.pid, lab.s3.pid, lab.esp._proc.pid]
        self.port = lab.esp.port
        self.url = lab.server_url
        self.operator_token = lab.cfg.server.operator_token

    def all_gone(self) -> bool:
        return not any(alive(p) for p in self.pids)


def test_demo_tells_the_whole_story_and_keep_leaves_it_reachable(node_runtime: None, arm_toolchain: None,
                                                                  tmp_path: Path) -> None:
    out = io.StringIO()
    seen = Seen()

    def kept(d: demo_mod.Demo) -> None:
        seen.note(d.lab)
        assert d.lab.api.status()["version"] == "1.2.0"     # the server still answers
        assert Path(seen.port).exists() and d.lab.esp.alive

    code = demo_mod.run_demo(tmp_path / "demo", keep=True, out=out, wait=kept)
    text = out.getvalue()
    assert code == 0, text
    for step in ("Build 1.0.0", "invoke flash-stm32 --sim", "Deploy the bridge", "Release 1.1.0",
                 "Update the STM32 to 1.1.0", "Release 1.2.0", "Update the STM32 to 1.2.0"):
        assert step in text
    assert "stm32 uart | boot: jump slot B v1.1.0+0 (trial, 2 left)" in text
    assert "stm32 LED  | orange blinks" in text and "100% " in text
    rows = [line for line in text.splitlines() if " -> " in line and "|" in line]
    assert rows[0].startswith("1.0.0 -> 1.1.0 | B ") and "orange" in rows[0]
    assert rows[1].startswith("1.1.0 -> 1.2.0 | A ") and "green" in rows[1]
    assert [r.rstrip().rsplit("|", 1)[1].strip() for r in rows] == ["PASS", "PASS"]
    # the fleet act: a staged rollout of 1.2.0 that three boards cannot confirm pauses itself
    assert ("Fleet: rollout 1 of 1.2.0 is paused (by server: stage 2: 2 of 5 finished devices failed "
            "(40%)") in text
    assert "twin-6        | west  | 1.0.0  | 1.2.0   | reverted (REVERTED_WATCHDOG) | 1.0.0 slot A" in text
    assert "twin-9        | west  | 1.0.0  | -       | not offered" in text
    assert "  stage 2 (10 devices): offered 5, confirmed 3, failed 2 (40%)" in text
    assert f"operator token: {seen.operator_token}" in text and f"{seen.url}/ " in text
    assert "The lab keeps running until Ctrl-C" in text and seen.port in text
    assert seen.all_gone(), "a process of the demo outlived it"


def _fast_builds(monkeypatch: pytest.MonkeyPatch, fw_build: BuildResult) -> None:
    """The demo's builds replaced by the session build (these tests are about stopping)."""
    monkeypatch.setattr(demo_mod.Demo, "build", lambda self, version: fw_build.build_dir)


@pytest.mark.parametrize("failure", [Esp32Error("Failed to copy the bridge on /dev/pts/99: stand-in"),
                                     KeyboardInterrupt()])
def test_a_failed_or_interrupted_demo_stops_everything(node_runtime: None, fw_build: BuildResult,
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       failure: BaseException) -> None:
    _fast_builds(monkeypatch, fw_build)
    seen = Seen()

    def deploy_fails(self: Lab, server_url: str = "") -> Any:
        seen.note(self)
        raise failure

    monkeypatch.setattr(Lab, "deploy_bridge", deploy_fails)
    out = io.StringIO()
    code = demo_mod.run_demo(tmp_path / "demo", out=out)
    text = out.getvalue()
    if isinstance(failure, KeyboardInterrupt):
        assert code == 130 and "demo: interrupted" in text
    else:
        assert code == 1 and "demo: FAILED: Failed to copy the bridge on /dev/pts/99: stand-in" in text
    assert "demo: stopped the server, the S3 endpoint, the virtual ESP32 and the twin" in text
    assert seen.pids and seen.all_gone(), "a process of the demo outlived it"
