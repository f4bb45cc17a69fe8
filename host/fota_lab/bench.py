"""`invoke bench`: run the benchmark scripts under bench/ and print their figures as one table.

    >>> runs = run_benches(["link", "twin"])             # doctest: +SKIP   (minutes: real runs)
    >>> print(format_table(runs))                        # doctest: +SKIP
    >>> save_results(runs)                               # doctest: +SKIP

Each script runs as its own process, exactly as a reader would run it (``python bench/<name>.py``),
with ``--json FILE``; its figures are read from that file only (schema: fota_lab.benchjson), never
from what it prints. A script that is missing, fails, or writes no valid JSON gives a run saying
so, never an invented figure. The full test suite timing is optional (``suite=True``): it runs
``pytest -n 2`` over the whole suite and takes minutes.

The figures are kept in bench/results.json, one entry per benchmark with the date and the machine
load of its last run (fota_lab.benchstore); bench/results.md is regenerated from it, so that a change
of a figure shows up in review. A run replaces the entries of the benchmarks it ran and keeps the
others: ``invoke bench --only link`` re-measures the link rows and leaves every other row as it was;
a benchmark that fails keeps its stored rows and the failure is noted beside them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fota_formats.errors import FotaError
from stm32_fota.project import current

from fota_lab.benchjson import BenchJsonError, Figure, read
from fota_lab.benchstore import RESULTS_JSON, RESULTS_MD, load_store, markdown
from fota_lab.releasekey import throwaway_key

SCRIPT_TIMEOUT_S = 1800.0
SUITE_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...] = ()


BENCHES = {b.name: b for b in (
    Bench("build", "bench_build.py", ("--rounds", "1")),
    Bench("link", "bench_link.py"),
    Bench("twin", "bench_twin.py"),
    Bench("server", "bench_server.py"),
    Bench("server-scale", "bench_server_scale.py"),
    Bench("vesp32", "bench_vesp32.py"),
    Bench("bridge-mem", "bench_bridge_mem.py"),
    Bench("crypto", "bench_crypto.py"),
    Bench("console", "bench_console.py"),
)}
ALL = tuple(BENCHES)
SUITE = "suite"


@dataclass
class BenchRun:
    """One run of one benchmark: its figures, or why there are none."""

    name: str
    ok: bool
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str = ""
    when: datetime = field(default_factory=lambda: datetime.now(UTC))
    load: tuple[float, float, float] | None = None    # os.getloadavg() before the run


def _load() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return None
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _last_line(p: subprocess.CompletedProcess[str]) -> str:
    text = p.stderr.strip() or p.stdout.strip()
    return text.splitlines()[-1] if text else f"exit code {p.returncode}"


def run_bench(bench: Bench, bench_dir: Path | None = None, log: Callable[[str], None] = print) -> BenchRun:
    """Run ``bench``'s script with ``--json`` and read its figures from that file."""
    bench_dir = bench_dir if bench_dir is not None else current().bench_dir
    script = bench_dir / bench.script
    when, load = datetime.now(UTC), _load()

    def failed(seconds: float, error: str) -> BenchRun:
        return BenchRun(bench.name, False, seconds, error=error, when=when, load=load)

    if not script.is_file():
        return failed(0.0, f"{script.name} does not exist")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        json_path = Path(tmp) / f"{bench.name}.json"
        cmd = [sys.executable, str(script), *bench.args, "--json", str(json_path)]
        # The benchmarks build and sign with a throwaway key, never the user's signing key (and
        # need none configured on a fresh machine).
        env = {**os.environ, "FOTA_SIGNING_KEY": str(throwaway_key(Path(tmp) / "key").private)}
        log(f"bench: running {script.parent.name}/{script.name} {' '.join(bench.args)}".rstrip())
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=bench_dir.parent, capture_output=True, text=True,
                               timeout=SCRIPT_TIMEOUT_S, check=False, env=env)
        except subprocess.TimeoutExpired:
            return failed(time.monotonic() - t0, f"{script.name}: no result within {SCRIPT_TIMEOUT_S:.0f} s")
        seconds = time.monotonic() - t0
        if p.returncode != 0:
            return failed(seconds, f"{script.name} failed: {_last_line(p)}")
        try:
            figures = read(json_path, bench.name)
        except BenchJsonError as e:
            return failed(seconds, f"{script.name} exited 0 but {e}")
    return BenchRun(bench.name, True, seconds, figures, when=when, load=load)


_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def _suite_counts(stdout: str) -> dict[str, int]:
    """The counts of pytest's last line ("548 passed, 2 skipped in 154.2s")."""
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    return {kind: int(n) for n, kind in _SUMMARY.findall(last)}


def run_suite(root: Path | None = None, jobs: int = 2, log: Callable[[str], None] = print) -> BenchRun:
    """The whole test suite with pytest-xdist, timed (wall clock)."""
    root = root if root is not None else current().root
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", str(jobs), "--dist", "loadfile",
           "-p", "no:cacheprovider"]
    log(f"bench: running the full test suite ({' '.join(cmd[1:])})")
    when, load = datetime.now(UTC), _load()
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S,
                           check=False)
    except subprocess.TimeoutExpired:
        return BenchRun(SUITE, False, time.monotonic() - t0, error=f"longer than {SUITE_TIMEOUT_S:.0f} s",
                        when=when, load=load)
    seconds = time.monotonic() - t0
    note = ", ".join(f"{n} {k}" for k, n in _suite_counts(p.stdout).items()) or "no summary line"
    if p.returncode != 0:
        return BenchRun(SUITE, False, seconds, error=f"the suite failed ({note})", when=when, load=load)
    fig = Figure(group="test suite", name=f"full suite, {jobs} workers", value=round(seconds), unit="s",
                 notes=note)
    return BenchRun(SUITE, True, seconds, [fig], when=when, load=load)


def run_benches(names: list[str] | tuple[str, ...] = ALL, suite: bool = False,
                log: Callable[[str], None] = print) -> list[BenchRun]:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise FotaError(f"Failed to run the benchmarks: unknown name(s) {', '.join(unknown)} "
                        f"(known: {', '.join(BENCHES)})")
    runs = [run_bench(BENCHES[n], log=log) for n in dict.fromkeys(names)]
    if suite:
        runs.append(run_suite(log=log))
    return runs


def format_table(runs: list[BenchRun]) -> str:
    """The figures of ``runs`` as a plain-text table (a failed run: one NOT MEASURED row)."""
    rows = [("group", "figure", "value", "detail")]
    for r in runs:
        if not r.ok:
            rows.append((r.name, "NOT MEASURED", "-", r.error))
        rows += [(f.group, f.name, f.value_text(), f.detail()) for f in r.figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def save_results(runs: list[BenchRun], bench_dir: Path | None = None) -> tuple[Path, Path]:
    """Record ``runs`` in bench/results.json (other benchmarks' entries kept) and regenerate
    bench/results.md from it; returns both paths."""
    bench_dir = bench_dir if bench_dir is not None else current().bench_dir
    store = load_store(bench_dir / RESULTS_JSON)
    for r in runs:
        store.record(r)
    json_path, md_path = bench_dir / RESULTS_JSON, bench_dir / RESULTS_MD
    store.save(json_path)
    md_path.write_text(markdown(store, order=(*ALL, SUITE)), encoding="utf-8")
    return json_path, md_path
