"""`python -m esp32_twin` prints a pty that mpremote can use while the command runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fota_testkit.mpremote import Mp


def test_cli_prints_a_working_pty(node_runtime: None, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "esp32_twin", "--no-twin", "--fs", str(tmp_path / "fs"), "--seconds", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.search(r"virtual ESP32 on (\S+) ", first)
        assert m, first
        assert Mp(m.group(1))("exec", "open('made-here.txt', 'w').write('x')").returncode == 0
        assert (tmp_path / "fs" / "made-here.txt").read_text() == "x"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_reports_a_missing_build(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "esp32_twin", "--build-dir", str(tmp_path / "nothing"), "--seconds", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "Failed to load the build" in result.stderr and "bootloader.bin does not exist" in result.stderr


def test_the_nrst_pullup_option_reaches_the_parsed_options() -> None:
    from esp32_twin.cli import parse_args

    assert parse_args(["--no-nrst-pullup"]).no_nrst_pullup is True
    assert parse_args([]).no_nrst_pullup is False
