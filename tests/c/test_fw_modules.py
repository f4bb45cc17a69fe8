"""Host tests of the firmware's portable modules (stm32/lib: crc32, sha256, flash_area, image,
journal, boot_decide, version, withdraw), of the update agent (stm32/agent) and of the pure parts of
the application (app/sched.c) and drivers (the temperature conversion in drivers/temp_conv.c), over
the one RAM-backed flash tests/c/flash_ram.c.

Every C file of tests/c goes into one runner: the harness (harness.c), the fixtures (fixture.c,
agent_fixture.c), the RAM flash and the cases (fw_*.c, TEST(name) blocks). It is built once per
module with the host gcc (AddressSanitizer + UBSan, -Werror) and run once; every C case is one
pytest case.
CRC-32 and SHA-256 are also compared with zlib and hashlib on random data of many lengths.
"""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import zlib
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SOURCES = sorted(HERE.glob("*.c"))
CASES = sorted(
    name for src in SOURCES
    for name in re.findall(r"^TEST\((\w+)\)", src.read_text(encoding="utf-8"), flags=re.MULTILINE)
)


@pytest.fixture(scope="module")
def results(runner: Path) -> dict[str, str]:
    """Run every case once; map case name to its output ("ok" or the failure lines)."""
    proc = subprocess.run([str(runner)], capture_output=True, text=True, timeout=120)
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"(ok|FAIL) (\w+)", line)
        if m:
            out[m.group(2)] = "ok" if m.group(1) == "ok" else "\n".join(pending) or "failed"
            pending = []
        else:
            pending.append(line)
    if proc.returncode not in (0, 1) or proc.stderr:
        # A sanitizer report or a crash: attribute it to the case that was running.
        out.setdefault("<crash>", proc.stdout[-2000:] + proc.stderr[-4000:])
    return out


def test_cases_found() -> None:
    """The regex found the C cases (a renamed macro would silently drop them all)."""
    assert len(CASES) >= 40
    assert len(set(CASES)) == len(CASES), "duplicate TEST names"


def test_runner_ran_every_case(results: dict[str, str]) -> None:
    assert "<crash>" not in results, results.get("<crash>")
    assert sorted(results) == CASES


@pytest.mark.parametrize("case", CASES)
def test_c(results: dict[str, str], case: str) -> None:
    assert case in results, f"{case} did not run (crash before it?): {results.get('<crash>', '')}"
    assert results[case] == "ok", results[case]


def _lengths() -> list[int]:
    # Around the SHA-256 block (64) and padding (55/56) boundaries, plus random sizes.
    rng = random.Random(2)
    return [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096,
            *(rng.randrange(1, 70000) for _ in range(6))]


@pytest.mark.parametrize("length", _lengths())
def test_crc32_and_sha256_match_python(runner: Path, tmp_path: Path, length: int) -> None:
    data = random.Random(length).randbytes(length)
    f = tmp_path / "data.bin"
    f.write_bytes(data)
    crc = subprocess.run([str(runner), "crc32", str(f)], capture_output=True, text=True, check=True)
    sha = subprocess.run([str(runner), "sha256", str(f)], capture_output=True, text=True, check=True)
    assert int(crc.stdout, 16) == zlib.crc32(data)
    assert sha.stdout.strip() == hashlib.sha256(data).hexdigest()
