"""`deploy-esp32` and `update` (stm32_fota.esp32, the code under the invoke tasks), unchanged,
against the virtual ESP32 (real MicroPython under Node behind a pty) wired to the STM32 twin
running the real firmware: deploy, update A -> B, then B -> A, with the status lines checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_server import FakeServer
from stm32_fota.build import BuildResult
from stm32_fota.esp32 import deploy, parse_line, run_update
from twin_helpers import boot_twin, restamp

esp32_twin = pytest.importorskip("esp32_twin", reason="the virtual ESP32 package is not installed")


@pytest.fixture
def node_runtime() -> None:
    from esp32_twin.device import NPM_PACKAGE, find_node_modules
    if find_node_modules() is None:
        pytest.skip(f"npm package {NPM_PACKAGE} not installed: run `npm ci` in the repository root")


def test_deploy_then_update_a_to_b_and_back(node_runtime: None, fw_build: BuildResult,
                                            tmp_path: Path) -> None:
    from esp32_twin.twin_peer import TwinPeer

    d = fw_build.build_dir
    to_b = restamp((d / "slot-b.bin").read_bytes(), (1, 1, 0), size=40 * 1024)
    to_a = restamp((d / "slot-a.bin").read_bytes(), (1, 2, 0), size=24 * 1024)
    board = boot_twin(d)
    with FakeServer(to_b, "1.1.0", "B") as srv:
        esp = esp32_twin.VirtualEsp32(TwinPeer(board), board=board, fs_dir=tmp_path / "fs",
                                      log_path=tmp_path / "node.log")
        esp.start()
        try:
            r = deploy(esp.port, None, {"server": srv.url, "wifi_ssid": "lab", "wifi_password": "pw"},
                       build_dir=tmp_path / "build")
            assert r.check.startswith("fota: bridge ok") and r.config_written
            assert (tmp_path / "fs" / "fotalink.mpy").is_file() and (tmp_path / "fs" / "main.py").is_file()

            lines: list[str] = []
            first = run_update(esp.port, lines.append, timeout_s=300)
            assert (first.outcome, first.version, first.slot) == ("confirmed", "1.1.0", "B"), lines
            steps = [p.name for p in map(parse_line, lines) if p is not None and p.kind == "step"]
            assert steps[:5] == ["wifi", "info", "stm32", "checkin", "download"]
            assert steps[-5:] == ["verify", "activate", "reset", "boot", "confirm"]
            assert "fota: progress 100% 40960/40960" in lines

            srv.offer_release(to_a, "1.2.0", "A", update_id=18)
            lines.clear()
            back = run_update(esp.port, lines.append, timeout_s=300)
            assert (back.outcome, back.version, back.slot) == ("confirmed", "1.2.0", "A"), lines
            assert "fota: step stm32 slot B version 1.1.0 last CONFIRMED" in lines
            assert [(x["update_id"], x["outcome"]) for x in srv.reports if x["stage"] == "result"] == \
                [(17, "confirmed"), (18, "confirmed")]
        finally:
            esp.stop()
