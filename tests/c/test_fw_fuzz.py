"""Host fuzzing of the firmware's parsers under ASan + UBSan: the coverage-guided mutation engine
tests/c/fuzz/fuzz_main.c (gcc's -fsanitize-coverage=trace-pc,trace-cmp; no clang, no libFuzzer)
driving one target per parser (fuzz/target_<name>.c):

- image: the bootloader's image checks (stm32/lib/image.c, image_validate over the RAM flash),
  100,000 runs in about a second;
- mcuboot: the MCUboot image checks (stm32/lib/mcuboot.c: header, TLV areas, key ring, hash and
  signature), 100,000 runs;
- ed25519: ed25519_verify and SHA-512 on arbitrary keys, signatures and messages, a few thousand
  runs (each is a full verification);
- planted: a TLV walker with a planted out-of-bounds read, which the engine must find and report
  with the input that triggers it (proof that the harness finds what it is for).

FOTA_FUZZ_RUNS=N (or `invoke fuzz --runs N`) sets the runs of every real target, FOTA_FUZZ_SEED the
seed; the defaults are fixed so that a run is reproducible."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
LIB = HERE.parents[1] / "stm32" / "lib"
RESULT = re.compile(r"fuzz: (\d+) runs, seed (\d+), corpus (\d+) \((\d+) seeds\), (\d+) edges, "
                    r"(\d+) constants")


@dataclass(frozen=True)
class Target:
    sources: tuple[Path, ...]
    runs: int   # in the suite


TARGETS = {
    "image": Target((*sorted(LIB.glob("*.c")), HERE / "flash_ram.c"), 100_000),
    "mcuboot": Target((*sorted(LIB.glob("*.c")), HERE / "flash_ram.c"), 100_000),
    "ed25519": Target((LIB / "ed25519.c", LIB / "sha512.c"), 3_000),
}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        pytest.fail(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def fuzz(exe: Path, runs: int, seed: int, cwd: Path, *corpus: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), str(runs), str(seed), *map(str, corpus)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_fuzzing(fuzz_driver: Callable[[str, Sequence[Path]], Path], tmp_path: Path,
                                 name: str) -> None:
    target = TARGETS[name]
    runs = env_int("FOTA_FUZZ_RUNS", target.runs)
    seed = env_int("FOTA_FUZZ_SEED", 12)
    proc = fuzz(fuzz_driver(name, target.sources), runs, seed, tmp_path)
    assert proc.returncode == 0 and not proc.stderr, f"fuzz_{name}: {proc.stderr[-6000:]}"
    m = RESULT.fullmatch(proc.stdout.strip())
    assert m, proc.stdout
    assert int(m.group(1)) == runs
    # The coverage feedback works: mutated inputs reached code the seeds did not.
    assert int(m.group(3)) > int(m.group(4)), proc.stdout
    print(proc.stdout.strip())


def test_the_planted_bug_is_found_and_replayed(fuzz_driver: Callable[[str, Sequence[Path]], Path],
                                               tmp_path: Path) -> None:
    exe = fuzz_driver("planted", ())
    proc = fuzz(exe, 100_000, 1, tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "AddressSanitizer: heap-buffer-overflow" in proc.stderr
    assert "target_planted.c" in proc.stderr
    m = re.search(r"fuzz: input \((\d+) bytes, also in (fuzz-crash-1\.bin)\): ([0-9a-f]*)", proc.stderr)
    assert m, proc.stderr[-3000:]
    crash = tmp_path / m.group(2)
    assert crash.read_bytes().hex() == m.group(3) and len(crash.read_bytes()) == int(m.group(1))
    # The saved input alone, as a corpus file with no runs, crashes again.
    again = fuzz(exe, 0, 2, tmp_path, crash)
    assert again.returncode != 0 and "heap-buffer-overflow" in again.stderr


@pytest.mark.parametrize(("args", "problem"), [
    ([], "usage:"),
    (["ten", "1"], "RUNS must be a number, not 'ten'"),
    (["10", "x"], "SEED must be a number, not 'x'"),
    (["10", "1", "/nonexistent/corpus"], "/nonexistent/corpus"),
])
def test_bad_arguments_are_named(fuzz_driver: Callable[[str, Sequence[Path]], Path], tmp_path: Path,
                                 args: list[str], problem: str) -> None:
    exe = fuzz_driver("planted", ())
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and problem in proc.stderr
