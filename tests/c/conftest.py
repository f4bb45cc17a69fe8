"""The C test runner of tests/c, built once per session: every C file of tests/c (harness, fixtures,
RAM flash, cases) with the firmware's portable modules, the agent and Monocypher (fetched into
build/third_party by scripts/fetch_monocypher.py when missing), under ASan + UBSan."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
STM32 = ROOT / "stm32"
MODULES = (*sorted((STM32 / "lib").glob("*.c")), STM32 / "agent" / "agent.c")
OTHER = (STM32 / "app" / "sched.c", STM32 / "drivers" / "temp_conv.c")
MONOCYPHER = ROOT / "build" / "third_party" / "monocypher"
SOURCES = sorted(HERE.glob("*.c"))
CFLAGS = [
    "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
    *(f"-I{STM32 / room}" for room in ("lib", "agent", "gen", "app", "drivers", "port", "include")),
    f"-I{HERE}", f"-I{MONOCYPHER}",
]


def monocypher() -> Path:
    """Monocypher's monocypher.c, fetched (pinned, hash-checked) when build/third_party lacks it."""
    script = ROOT / "scripts" / "fetch_monocypher.py"
    spec = importlib.util.spec_from_file_location("fetch_monocypher", script)
    assert spec is not None and spec.loader is not None
    fetcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetcher)
    try:
        fetcher.fetch(MONOCYPHER)
    except fetcher.FetchError as exc:
        pytest.fail(f"Monocypher is missing and could not be fetched: {exc}")
    return MONOCYPHER / "monocypher.c"


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed (apt-get install gcc)")
    exe = tmp_path_factory.mktemp("fw_modules") / "fw_tests"
    cmd = ["gcc", *CFLAGS, *map(str, SOURCES), *map(str, MODULES), *map(str, OTHER), str(monocypher()),
           "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, "Failed to build the C test runner:\n" + proc.stderr
    return exe


