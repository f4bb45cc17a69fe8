"""Host tests of the update agent (stm32/agent/agent.c): builds tests/c/test_agent.c with the host
gcc (AddressSanitizer + UBSan) against the real flash-area, journal, image, SHA-256 and CRC-32
modules, and runs each C test case as one pytest case."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(__file__).with_name("test_agent.c")
LIB = ROOT / "stm32" / "lib"
AGENT = ROOT / "stm32" / "agent"
# Modules the agent links against; agent.c and the test are built with -Werror.
MODULES = ("flash_area", "journal", "image", "sha256", "crc32", "boot_decide", "version", "withdraw")
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=undefined", f"-I{LIB}", f"-I{AGENT}", f"-I{ROOT / 'stm32' / 'gen'}"]
CASES = re.findall(r"^TEST\((\w+)\)", SRC.read_text(encoding="utf-8"), flags=re.MULTILINE)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    out = tmp_path_factory.mktemp("agent")
    objs = []
    for name in MODULES:
        obj = out / f"{name}.o"
        subprocess.run(["gcc", *CFLAGS, "-c", str(LIB / f"{name}.c"), "-o", str(obj)], check=True)
        objs.append(str(obj))
    exe = out / "test_agent"
    subprocess.run(["gcc", *CFLAGS, "-Werror", str(SRC), str(AGENT / "agent.c"), *objs, "-o", str(exe)],
                   check=True)
    return exe


def test_every_case_is_registered() -> None:
    """A TEST() missing from the runner's table would silently never run."""
    table = re.findall(r"^\s*T\((\w+)\),", SRC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert sorted(table) == sorted(CASES)
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_agent(runner: Path, case: str) -> None:
    proc = subprocess.run([str(runner), case], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"ok {case}" in proc.stdout, proc.stdout + proc.stderr
