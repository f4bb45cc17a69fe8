"""`invoke bench`: run the benchmark scripts under bench/ and print their figures as one table.

    >>> figures = run_benches(["link", "twin"])          # doctest: +SKIP   (minutes: real runs)
    >>> print(format_table(figures))                     # doctest: +SKIP

Each script runs as its own process, exactly as a reader would run it (``python bench/<name>.py``);
its figures are read from its ``--json`` file when it has that option (bench_build, bench_server,
bench_server_scale)
and otherwise parsed from the lines it prints (bench_link, bench_twin, bench_vesp32,
bench_bridge_mem). A script that fails or is
missing gives a row saying so, never an invented figure. The full test suite timing is optional
(``suite=True``): it runs ``pytest -n 2`` over the whole suite and takes minutes.

The last results are kept in bench/results.md (written by ``write_results``), so that a change of
a figure shows up in review. ``merge_results`` replaces only the rows of the benchmarks just run
in that file and keeps the others (``invoke bench --only X --merge``).
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

from stm32_fota.project import current

RESULTS_FILE = "results.md"
SCRIPT_TIMEOUT_S = 1800.0
SUITE_TIMEOUT_S = 3600.0
ALL = ("build", "link", "twin", "server", "server-scale", "vesp32", "bridge-mem")


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


def parse_server_scale(_out: str, data: dict[str, Any] | None) -> list[Figure]:
    if not data:
        return []
    figs = []
    for key, d in data.items():
        if not (isinstance(d, dict) and isinstance(d.get("checkins"), dict)):
            continue
        sat, paced = d["checkins"], d.get("paced") or {}
        what = f"{d['backend']}, {d['workers']} worker{'s' if d['workers'] > 1 else ''}"
        figs.append(Figure("server, past one process", f"check-ins, {what}", f"{sat['per_s']}/s",
                           f"p99 {sat['p99_ms']} ms, p50 {sat['p50_ms']} ms, errors {sat['errors']}; "
                           f"load {d['load_1min']} ({key})"))
        if paced:
            figs.append(Figure("server, past one process",
                               f"check-ins paced at {paced['target_per_s']:.0f}/s, {what}",
                               f"p99 {paced['p99_ms']} ms",
                               f"{paced['per_s']}/s, p50 {paced['p50_ms']} ms, errors {paced['errors']}"))
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

_VESP_MS = re.compile(r"^(start-up|mpremote exec \(process, soft reset\)|mpremote resume exec \(process\)"
                      r"|exec round trip \(open connection, raw-paste\)): ([\d.]+ ms) \((.*)\)\s*$")
_VESP_CP = re.compile(r"^mpremote fs cp (\d+ KB): ([\d.]+ s), (\d+ KB/s) \((.*)\)\s*$")
_VESP_UPDATE = re.compile(r"^update (\d+ KB) A -> B: (\w+), ([\d.]+ s) host; bridge says: (.*?)\s*$")
_VESP_PEAK = re.compile(r"^update (\d+ KB) peak gc\.mem_alloc\(\): ([\d.]+ KB) of a (\d+ KB) heap")
VESP32 = "virtual ESP32 (host time)"


def parse_vesp32(out: str, _json: dict[str, Any] | None) -> list[Figure]:
    figs = []
    for line in out.splitlines():
        if m := _VESP_MS.match(line):
            figs.append(Figure(VESP32, m[1], m[2], m[3]))
        elif m := _VESP_CP.match(line):
            figs.append(Figure(VESP32, f"mpremote fs cp {m[1]}", m[2], f"{m[3]}, {m[4]}"))
        elif m := _VESP_UPDATE.match(line):
            figs.append(Figure(VESP32, f"update {m[1]} A -> B via the bridge", m[3],
                               f"{m[2]}; bridge: {m[4]}"))
        elif m := _VESP_PEAK.match(line):
            figs.append(Figure(VESP32, f"update {m[1]}: peak gc.mem_alloc()", m[2],
                               f"of a {m[3]} heap (upper bound: the cycle's garbage included)"))
    return figs


_MEM_CYCLE = r"^allocated by the cycle: (\d+) bytes .*?(\d+) bytes per chunk on average over (\d+) chunks"
_MEM_CHUNK = r"^allocated per chunk while streaming: median (\d+) bytes \(min (\d+), max (\d+)"
_MEM_LINES = (
    (re.compile(r"^bridge imported: (\d+) bytes"), "bridge modules imported (live)", ""),
    (re.compile(r"^config, Link, Http, Updater created: (\d+) bytes"), "config, Link, Http, Updater", ""),
    (re.compile(_MEM_CYCLE), "allocated by the whole cycle", "{1} B per chunk on average over {2} chunks"),
    (re.compile(_MEM_CHUNK), "allocated per chunk while streaming (median)",
     "min {1} B, max {2} B (a chunk that also sends a progress report)"),
    (re.compile(r"^peak gc\.mem_alloc\(\): (\d+) bytes"), "peak gc.mem_alloc()",
     "modules and garbage included"),
)
_MEM_UPDATE = re.compile(r"^update (\d+ KB) A -> B: (fota: result .*?)\s*$")
BRIDGE_MEM = "bridge heap, one update cycle (virtual ESP32)"


def parse_bridge_mem(out: str, _json: dict[str, Any] | None) -> list[Figure]:
    figs = []
    update = ""
    for line in out.splitlines():
        if m := _MEM_UPDATE.match(line):
            update = f"{m[1]} image, {m[2]}"
        for rx, metric, note in _MEM_LINES:
            if m := rx.match(line):
                figs.append(Figure(BRIDGE_MEM, metric, f"{int(m[1])} B", note.format(*m.groups())))
    if figs and update:
        figs[0].note = update
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
    "server-scale": Bench("server-scale", "bench_server_scale.py", (), parse_server_scale, json=True),
    "vesp32": Bench("vesp32", "bench_vesp32.py", (), parse_vesp32),
    "bridge-mem": Bench("bridge-mem", "bench_bridge_mem.py", (), parse_bridge_mem),
}


def run_bench(bench: Bench, bench_dir: Path | None = None, log: Callable[[str], None] = print) -> BenchRun:
    bench_dir = bench_dir if bench_dir is not None else current().bench_dir
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


def run_suite(root: Path | None = None, jobs: int = 2, log: Callable[[str], None] = print) -> BenchRun:
    """The whole test suite with pytest-xdist, timed (wall clock)."""
    root = root if root is not None else current().root
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
        from fota_formats.errors import FotaError

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


def write_results(runs: list[BenchRun], path: Path | None = None) -> Path:
    """Write the table to bench/results.md (overwritten: the file holds the last run)."""
    path = path if path is not None else current().bench_dir / RESULTS_FILE
    path.write_text(markdown(runs), encoding="utf-8")
    return path


_RUN_TIMES = "Scripts and run times: "
_MERGED = "Rows re-measured later (`invoke bench --only NAME --merge`): "


def merge_markdown(old: str, runs: list[BenchRun], when: datetime | None = None) -> str:
    """``old`` (a results.md) with the rows of ``runs`` in place of the rows those benchmarks gave
    last time (matched by group, or by bench name for a NOT MEASURED row); other rows are kept.

    New groups go before the test suite row; the run-times line is updated and a line under the
    date of the full run says which rows were measured later, and when."""
    new = markdown(runs, when).splitlines()
    new_rows = [ln for ln in new if ln.startswith("| ") and not ln.startswith("| group |")]
    replaced = {ln.split(" | ")[0][2:] for ln in new_rows} | {r.name for r in runs}
    lines = old.splitlines()
    try:
        first = lines.index("|---|---|---|---|") + 1
    except ValueError:
        from fota_formats.errors import FotaError

        raise FotaError("Failed to merge the benchmark results: no table in the saved file "
                        "(run `invoke bench` without --merge once)") from None
    end = first
    while end < len(lines) and lines[end].startswith("| "):
        end += 1
    kept = [ln for ln in lines[first:end] if ln.split(" | ")[0][2:] not in replaced]
    at = next((i for i, ln in enumerate(kept) if ln.startswith("| test suite |")), len(kept))
    table = kept[:at] + new_rows + kept[at:]
    times = {r.name: f"{r.seconds:.0f} s" for r in runs}
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    merged = {r.name: stamp for r in runs}
    head = [ln for ln in lines[:first] if not ln.startswith(_MERGED)]
    for ln in lines[:first]:
        if ln.startswith(_MERGED):
            merged = dict(item.split(" ", 1) for item in ln[len(_MERGED):].rstrip(".").split(", ")) | merged
    at_date = next((i + 1 for i, ln in enumerate(head) if ln.startswith("Last `invoke bench` run: ")), 1)
    head[at_date:at_date] = [_MERGED + ", ".join(f"{k} {v}" for k, v in merged.items()) + "."]
    out = []
    for ln in head + table + lines[end:]:
        if ln.startswith(_RUN_TIMES):
            parts = [item.rsplit(" ", 2) for item in ln[len(_RUN_TIMES):].split(", ")]
            old_times = {p[0]: f"{p[1]} {p[2]}" for p in parts if len(p) == 3} | times
            ln = _RUN_TIMES + ", ".join(f"{k} {v}" for k, v in old_times.items())
        out.append(ln)
    return "\n".join(out) + "\n"


def merge_results(runs: list[BenchRun], path: Path | None = None) -> Path:
    """Update bench/results.md with ``runs`` only (see ``merge_markdown``); the other rows stay."""
    path = path if path is not None else current().bench_dir / RESULTS_FILE
    path.write_text(merge_markdown(path.read_text(encoding="utf-8"), runs), encoding="utf-8")
    return path
