"""Benchmark of `invoke build`: clean build, no-op rebuild, one touched source, version change.

    .venv/bin/python bench/bench_build.py                  # default: 3 rounds, make -j2
    .venv/bin/python bench/bench_build.py --rounds 5 --jobs 1

Each round builds into a fresh temporary directory (never build/), through the same library call
as the task (stm32_fota.build.build), and times:

1. clean: nothing in the directory (make, ELF checks, post-link, bridge compile);
2. no-op: the same build again (everything up to date);
3. touched: one application source file newer (its objects recompile in both slot builds and the
   slots relink); the source is copied into a private source tree, never touched in place;
4. version: a new version (the version-bearing objects recompile, every target relinks).

Prints the median and the spread per step, and the image sizes (``--json FILE`` also writes them
as JSON, the form `invoke bench` reads: fota_lab.benchjson). The machine is shared, so read the
figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fota_lab.benchjson import Figure, write
from stm32_fota.build import BuildResult, build
from stm32_fota.project import current

TOUCHED = Path("app") / "main.c"   # relative to the firmware source tree


def _timed(fn: Callable[[], BuildResult]) -> tuple[float, BuildResult]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def one_round(work: Path, jobs: int) -> tuple[dict[str, float], BuildResult]:
    src = work / "stm32"
    # A private source tree (the Makefile finds gen/, ld/ and sources relative to itself).
    shutil.copytree(current().stm32_dir, src, symlinks=True, ignore=shutil.ignore_patterns("*.o", "*.d"))
    out = work / "build"
    times: dict[str, float] = {}
    times["clean"], result = _timed(lambda: build("1.0.0", 0, out, jobs=jobs, source_dir=src))
    times["no-op"], _ = _timed(lambda: build("1.0.0", 0, out, jobs=jobs, source_dir=src))
    touched = src / TOUCHED
    later = time.time() + 2
    os.utime(touched, (later, later))
    times["touched"], _ = _timed(lambda: build("1.0.0", 0, out, jobs=jobs, source_dir=src))
    times["version"], _ = _timed(lambda: build("1.0.1", 0, out, jobs=jobs, source_dir=src))
    return times, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the four builds (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel make jobs (default 2)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    samples: dict[str, list[float]] = {}
    result = None
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
            times, result = one_round(Path(tmp), args.jobs)
        for k, v in times.items():
            samples.setdefault(k, []).append(v)
    print(f"invoke build, make -j{args.jobs}, {args.rounds} round(s), {os.cpu_count()} CPU(s)")
    print(f"{'step':<8}  {'median':>8}  {'min':>8}  {'max':>8}")
    for k, v in samples.items():
        print(f"{k:<8}  {statistics.median(v):>7.2f}s  {min(v):>7.2f}s  {max(v):>7.2f}s")
    assert result is not None
    for r in result.reports:
        print(f"{r.target.name:<10}  flash {r.flash_used:>7} B of {r.flash_limit:>7} B  "
              f"sram {r.sram_used:>6} B")
    if args.json:
        figures = [Figure(group="invoke build", name=k, value=round(statistics.median(v), 2), unit="s",
                          notes=f"min {min(v):.2f} s, max {max(v):.2f} s, make -j{args.jobs}")
                   for k, v in samples.items()]
        figures += [Figure(group="firmware size (v1.0.0)", name=r.target.name, value=r.flash_used, unit="B",
                           notes=f"flash, of {r.flash_limit} B; SRAM {r.sram_used} B")
                    for r in result.reports]
        write(args.json, "build", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
