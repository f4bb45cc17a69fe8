"""`invoke bench`: run the benchmark scripts under bench/ and print their figures as one table.

    >>> figures = run_benches(["link", "twin"])          # doctest: +SKIP   (minutes: real runs)
    >>> print(format_table(figures))                     # doctest: +SKIP

Each script runs as its own process, exactly as a reader would run it (``python bench/<name>.py``);
its figures are read from its ``--json`` file when it has that option (bench_build, bench_server)
and otherwise parsed from the lines it prints (bench_link, bench_twin). A script that fails or is
missing gives a row saying so, never an invented figure. The full test suite timing is optional
(``suite=True``): it runs ``pytest -n 2`` over the whole suite and takes minutes.

The last results are kept in bench/results.md (written by ``write_results``), so that a change of
a figure shows up in review.
"""

from __future__ import annotations

import json
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "bench"
RESULTS = BENCH_DIR / "results.md"
SCRIPT_TIMEOUT_S = 1800.0
SUITE_TIMEOUT_S = 3600.0
ALL = ("build", "link", "twin", "server")


@dataclass
class Figure:
    group: str
    metric: str
    value: str
    note: str = ""


@dataclass
class BenchRun:
    name: str
    ok: bool
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str = ""


# -- parsers: one per script, from its printed lines or its JSON file ------------------------------

_LINK_ROW = re.compile(r"^\s*(\d+) KB\s+(\d+)\s+([\d.]+)ms\s+([\d.]+)ms\s+([\d.]+)\s.*?\s([\d.]+)\s*$")
_LINK_BOOT = re.compile(r"confirmed image ([\d.]+) ms, first trial boot ([\d.]+) ms")
_TWIN_LINE = re.compile(r"^(\d)\. (.*?):.*?([\d.]+) M instructions/s")
_TWIN_HOST = re.compile(r": ([\d.]+ m?s) host")


def parse_link(out: str, _json: dict[str, Any] | None) -> list[Figure]:
    figs = []
    for line in out.splitlines():
        if m := _LINK_ROW.match(line):
            kb, sectors, measured, bound, ratio, wire = m.groups()
            figs.append(Figure("update (BEGIN..ACTIVATE, virtual time)",
                               f"{kb} KB into slot B ({sectors} sectors)", f"{float(measured) / 1000:.3f} s",
                               f"lower bound {float(bound) / 1000:.3f} s, ratio {float(ratio):.3f}"))
            figs.append(Figure("wire efficiency", f"{kb} KB image",
                               f"{float(wire):.4f} SPI bytes per image byte"))
        elif m := _LINK_BOOT.search(line):
            figs.append(Figure("boot time (reset to application)", "confirmed image", f"{m[1]} ms"))
            figs.append(Figure("boot time (reset to application)", "first trial boot", f"{m[2]} ms"))
    return figs


def parse_twin(out: str, _json: dict[str, Any] | None) -> list[Figure]:
    figs = []
    for line in out.splitlines():
        if m := _TWIN_LINE.match(line):
            host = _TWIN_HOST.search(line)
            figs.append(Figure("twin speed", m[2], f"{float(m[3]):.1f} M instructions/s",
                               f"{host[1]} host time" if host else ""))
    return figs


def parse_server(_out: str, data: dict[str, Any] | None) -> list[Figure]:
    if not data:
        return []
    figs = []
    for key, label in (("checkin_close", "check-ins, new connection each"),
                       ("checkin_keep-alive", "check-ins, keep-alive"),
                       ("checkin_paced", "check-ins, paced")):
        d = data.get(key)
        if isinstance(d, dict):
            figs.append(Figure("server", label, f"{d['per_s']}/s",
                               f"p99 {d['p99_ms']} ms, p50 {d['p50_ms']} ms, errors {d['errors']}"))
    d = data.get("downloads")
    if isinstance(d, dict):
        figs.append(Figure("server", f"downloads, {d['concurrent']} concurrent", f"{d['MB_per_s']} MB/s",
                           f"errors {d['errors']}"))
    return figs


def parse_build(_out: str, data: dict[str, Any] | None) -> list[Figure]:
    if not data:
        return []
    figs = []
    for step in ("clean", "no-op", "touched", "version"):
        d = data.get(step)
        if isinstance(d, dict):
            figs.append(Figure("invoke build", step, f"{d['median_s']:.2f} s",
                               f"min {d['min_s']:.2f} s, max {d['max_s']:.2f} s"))
    return figs


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...]
    parse: Callable[[str, dict[str, Any] | None], list[Figure]]
    json: bool = False        # the script writes its figures with --json FILE


BENCHES = {
    "build": Bench("build", "bench_build.py", ("--rounds", "1"), parse_build, json=True),
    "link": Bench("link", "bench_link.py", (), parse_link),
    "twin": Bench("twin", "bench_twin.py", (), parse_twin),
    "server": Bench("server", "bench_server.py", (), parse_server, json=True),
}


def run_bench(bench: Bench, bench_dir: Path = BENCH_DIR, log: Callable[[str], None] = print) -> BenchRun:
    script = bench_dir / bench.script
    if not script.is_file():
        return BenchRun(bench.name, False, 0.0, error=f"{script.name} does not exist")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        json_path = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(script), *bench.args] + (["--json", str(json_path)] if bench.json else [])
        log(f"bench: running {script.parent.name}/{script.name} {' '.join(bench.args)}".rstrip())
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=bench_dir.parent, capture_output=True, text=True,
                               timeout=SCRIPT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return BenchRun(bench.name, False, time.monotonic() - t0,
                            error=f"no result within {SCRIPT_TIMEOUT_S:.0f} s")
        seconds = time.monotonic() - t0
        if p.returncode != 0:
            tail = (p.stderr.strip() or p.stdout.strip() or f"exit code {p.returncode}").splitlines()[-1]
            return BenchRun(bench.name, False, seconds, error=f"{script.name} failed: {tail}")
        data = json.loads(json_path.read_text()) if bench.json and json_path.is_file() else None
    figures = bench.parse(p.stdout, data)
    if not figures:
        return BenchRun(bench.name, False, seconds,
                        error=f"{script.name} printed no figure this tool understands (output changed?)")
    return BenchRun(bench.name, True, seconds, figures)


_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|error|errors|xfailed|xpassed)")


def run_suite(root: Path = ROOT, jobs: int = 2, log: Callable[[str], None] = print) -> BenchRun:
    """The whole test suite with pytest-xdist, timed (wall clock)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", str(jobs), "--dist", "loadfile",
           "-p", "no:cacheprovider"]
    log(f"bench: running the full test suite ({' '.join(cmd[1:])})")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S,
                           check=False)
    except subprocess.TimeoutExpired:
        return BenchRun("suite", False, time.monotonic() - t0, error=f"longer than {SUITE_TIMEOUT_S:.0f} s")
    seconds = time.monotonic() - t0
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    counts = {kind: int(n) for n, kind in _SUMMARY.findall(last)}
    note = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no summary line"
    fig = Figure("test suite", f"full suite, {jobs} workers", f"{seconds:.0f} s", note)
    return BenchRun("suite", p.returncode == 0, seconds, [fig],
                    error="" if p.returncode == 0 else f"the suite failed ({note})")


def run_benches(names: list[str] | tuple[str, ...] = ALL, suite: bool = False,
                log: Callable[[str], None] = print) -> list[BenchRun]:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        from .errors import FotaError

        raise FotaError(f"Failed to run the benchmarks: unknown name(s) {', '.join(unknown)} "
                        f"(known: {', '.join(BENCHES)})")
    runs = [run_bench(BENCHES[n], log=log) for n in names]
    if suite:
        runs.append(run_suite(log=log))
    else:
        later = Figure("test suite", "full suite, 2 workers", "not measured",
                       "`invoke bench --suite` times it (minutes)")
        runs.append(BenchRun("suite", True, 0.0, [later]))
    return runs


def format_table(runs: list[BenchRun]) -> str:
    rows = [("group", "figure", "value", "detail")]
    for r in runs:
        if not r.ok and not r.figures:
            rows.append((r.name, "NOT MEASURED", "-", r.error))
        for f in r.figures:
            rows.append((f.group, f.metric, f.value, f.note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(runs: list[BenchRun], when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    out = ["# Benchmark results", "",
           f"Last `invoke bench` run: {when.strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} CPUs "
           "(a shared machine: read the host-time figures as orders of magnitude; virtual-time figures "
           "are exact for the model).", "",
           "| group | figure | value | detail |", "|---|---|---|---|"]
    for r in runs:
        if not r.ok and not r.figures:
            out.append(f"| {r.name} | NOT MEASURED | - | {r.error} |")
        for f in r.figures:
            out.append(f"| {f.group} | {f.metric} | {f.value} | {f.note} |")
    out += ["", "Scripts and run times: " + ", ".join(f"{r.name} {r.seconds:.0f} s" for r in runs), ""]
    return "\n".join(out)


def write_results(runs: list[BenchRun], path: Path = RESULTS) -> Path:
    """Write the table to bench/results.md (overwritten: the file holds the last run)."""
    path.write_text(markdown(runs), encoding="utf-8")
    return path
