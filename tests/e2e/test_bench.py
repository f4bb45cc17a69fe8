"""`invoke bench` (fota_lab.bench): the figures it reads from the benchmark scripts' own output,
and what it says when a script is missing, fails or prints nothing it understands. The scripts are
stand-ins written into a temporary bench/ folder, printing in the real scripts' formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fota_lab.bench import (
    BENCHES,
    Bench,
    BenchRun,
    Figure,
    format_table,
    markdown,
    merge_markdown,
    parse_bridge_mem,
    parse_link,
    parse_server_scale,
    parse_twin,
    parse_vesp32,
    run_bench,
)

LINK_OUT = """Update BEGIN..ACTIVATE into slot B (virtual time, typical flash timings, SPI 10.5 MHz)
   image sectors   measured      bound  ratio    begin     write  verify activ.  wire/B
   64 KB       1   1292.0ms   1262.0ms  1.024  1001.2ms   280.1ms   6.1ms  1.2ms  1.0210
  256 KB       2   3156.0ms   3049.0ms  1.035  2001.2ms  1130.1ms  24.1ms  1.2ms  1.0082
worst ratio 1.035 (target <= 1.05)
""" + ("boot, reset to the application's first instruction: confirmed image 21.6 ms, "
       "first trial boot 29.3 ms (+-0.06 ms)\n")
TWIN_OUT = ("1. app main loop, 10 s virtual: 1.20 s host (8x real time), 1.10 M guest instructions, "
            "0.9 M instructions/s\n"
            "4. Unicorn ceiling, register-only loop in 10 000-instruction slices: 174 M instructions/s\n")
CEILING = "Unicorn ceiling, register-only loop in 10 000-instruction slices"
VESP32_OUT = """start-up: 412 ms (min 398, max 455, 5 runs)
mpremote exec (process, soft reset): 731 ms (min 702, max 790)
mpremote resume exec (process): 388 ms (min 371, max 402)
exec round trip (open connection, raw-paste): 4.2 ms (min 3.9, max 6.1, 50 runs)
mpremote fs cp 64 KB: 1.48 s, 43 KB/s (min 1.45 s, max 1.52 s)
update 256 KB A -> B: confirmed, 38.4 s host; bridge says: fota: result confirmed 1.1.0 slot B in 21.3 s
update 256 KB peak gc.mem_alloc(): 61.5 KB of a 128 KB heap (upper bound: garbage of the cycle included)
"""
BRIDGE_MEM_OUT = """update 256 KB A -> B: fota: result confirmed 1.1.0 slot B in 21.3 s
bridge imported: 23456 bytes in use after a collection (22.9 KB)
config, Link, Http, Updater created: 9012 bytes
allocated by the cycle: 48537 bytes (47.4 KB), 758 bytes per chunk on average over 64 chunks
allocated per chunk while streaming: median 208 bytes (min 176, max 1240: a chunk that also sends a \
progress report)
allocated while streaming: 17000 bytes over 63 chunks
peak gc.mem_alloc(): 70311 bytes (68.7 KB; modules and garbage included)
"""


def test_link_figures_per_size_wire_and_boot() -> None:
    figs = {(f.group, f.metric): (f.value, f.note) for f in parse_link(LINK_OUT, None)}
    assert figs[("update (BEGIN..ACTIVATE, virtual time)", "64 KB into slot B (1 sectors)")] == (
        "1.292 s", "lower bound 1.262 s, ratio 1.024")
    assert figs[("update (BEGIN..ACTIVATE, virtual time)", "256 KB into slot B (2 sectors)")][0] == "3.156 s"
    assert figs[("wire efficiency", "256 KB image")][0] == "1.0082 SPI bytes per image byte"
    assert figs[("boot time (reset to application)", "first trial boot")][0] == "29.3 ms"
    assert len(figs) == 6


def test_twin_figures() -> None:
    figs = [(f.metric, f.value) for f in parse_twin(TWIN_OUT, None)]
    assert figs == [("app main loop, 10 s virtual", "0.9 M instructions/s"),
                    (CEILING, "174.0 M instructions/s")]


def write_script(bench_dir: Path, name: str, body: str) -> None:
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / name).write_text(body)


def test_run_bench_reads_a_json_file_and_the_printed_lines(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench"
    server = {"checkin_close": {"per_s": 1096, "p50_ms": 1.5, "p99_ms": 9.8, "errors": 0},
              "downloads": {"concurrent": 50, "MB_per_s": 297.9, "errors": 0}}
    write_script(bench_dir, "bench_server.py",
                 "import json, sys\n"
                 "path = sys.argv[sys.argv.index('--json') + 1]\n"
                 f"open(path, 'w').write(json.dumps({json.dumps(server)}))\n")
    run = run_bench(BENCHES["server"], bench_dir, log=lambda _: None)
    assert run.ok, run.error
    assert [(f.metric, f.value, f.note) for f in run.figures] == [
        ("check-ins, new connection each", "1096/s", "p99 9.8 ms, p50 1.5 ms, errors 0"),
        ("downloads, 50 concurrent", "297.9 MB/s", "errors 0")]
    write_script(bench_dir, "bench_link.py", f"print({LINK_OUT!r})\n")
    assert len(run_bench(BENCHES["link"], bench_dir, log=lambda _: None).figures) == 6


def test_missing_failing_and_silent_scripts_are_reported_not_invented(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    missing = run_bench(BENCHES["twin"], bench_dir, log=lambda _: None)
    assert not missing.ok and missing.error == "bench_twin.py does not exist"
    write_script(bench_dir, "bench_twin.py", "raise SystemExit('bench: no firmware build')\n")
    failed = run_bench(BENCHES["twin"], bench_dir, log=lambda _: None)
    assert not failed.ok and failed.error == "bench_twin.py failed: bench: no firmware build"
    write_script(bench_dir, "bench_x.py", "print('figures moved elsewhere')\n")
    silent = run_bench(Bench("x", "bench_x.py", (), parse_twin), bench_dir, log=lambda _: None)
    assert not silent.ok and "printed no figure" in silent.error
    table = format_table([missing, failed, silent])
    assert table.count("NOT MEASURED") == 3
    assert "| twin | NOT MEASURED | - | bench_twin.py does not exist |" in markdown([missing])


def test_vesp32_figures_serial_copy_update_and_heap() -> None:
    figs = [(f.metric, f.value, f.note) for f in parse_vesp32(VESP32_OUT, None)]
    assert figs == [
        ("start-up", "412 ms", "min 398, max 455, 5 runs"),
        ("mpremote exec (process, soft reset)", "731 ms", "min 702, max 790"),
        ("mpremote resume exec (process)", "388 ms", "min 371, max 402"),
        ("exec round trip (open connection, raw-paste)", "4.2 ms", "min 3.9, max 6.1, 50 runs"),
        ("mpremote fs cp 64 KB", "1.48 s", "43 KB/s, min 1.45 s, max 1.52 s"),
        ("update 256 KB A -> B via the bridge", "38.4 s",
         "confirmed; bridge: fota: result confirmed 1.1.0 slot B in 21.3 s"),
        ("update 256 KB: peak gc.mem_alloc()", "61.5 KB",
         "of a 128 KB heap (upper bound: the cycle's garbage included)"),
    ]
    # --no-update: the serial figures alone are still figures
    assert len(parse_vesp32(VESP32_OUT.split("update 256")[0], None)) == 5


def test_bridge_mem_figures_per_cycle_and_per_chunk() -> None:
    figs = parse_bridge_mem(BRIDGE_MEM_OUT, None)
    assert {f.group for f in figs} == {"bridge heap, one update cycle (virtual ESP32)"}
    assert [(f.metric, f.value, f.note) for f in figs] == [
        ("bridge modules imported (live)", "23456 B",
         "256 KB image, fota: result confirmed 1.1.0 slot B in 21.3 s"),
        ("config, Link, Http, Updater", "9012 B", ""),
        ("allocated by the whole cycle", "48537 B", "758 B per chunk on average over 64 chunks"),
        ("allocated per chunk while streaming (median)", "208 B",
         "min 176 B, max 1240 B (a chunk that also sends a progress report)"),
        ("peak gc.mem_alloc()", "70311 B", "modules and garbage included"),
    ]
    assert parse_bridge_mem("bench_bridge_mem: the cycle did not complete\n", None) == []


def test_merge_replaces_only_the_rows_of_the_benches_run(tmp_path: Path) -> None:
    old_twin = BenchRun("twin", True, 65.0, [Figure("twin speed", "app main loop", "1.9 M instructions/s")])
    old_vesp = BenchRun("vesp32", True, 90.0, [Figure("virtual ESP32 (host time)", "start-up", "999 ms")])
    suite = BenchRun("suite", True, 154.0, [Figure("test suite", "full suite, 2 workers", "154 s")])
    old = markdown([old_twin, old_vesp, suite])
    new_vesp = BenchRun("vesp32", True, 80.0, parse_vesp32(VESP32_OUT, None))
    mem = BenchRun("bridge-mem", False, 3.0, error="bench_bridge_mem.py failed: no build")
    merged = merge_markdown(old, [new_vesp, mem], when=datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    rows = [ln for ln in merged.splitlines() if ln.startswith("| ")]
    assert rows[0] == "| group | figure | value | detail |"
    assert rows[1] == "| twin speed | app main loop | 1.9 M instructions/s |  |"
    assert "999 ms" not in merged and "| virtual ESP32 (host time) | start-up | 412 ms |" in merged
    assert rows[-2] == "| bridge-mem | NOT MEASURED | - | bench_bridge_mem.py failed: no build |"
    assert rows[-1] == "| test suite | full suite, 2 workers | 154 s |  |"
    assert len(rows) == 1 + 1 + 7 + 1 + 1
    assert "Scripts and run times: twin 65 s, vesp32 80 s, suite 154 s, bridge-mem 3 s" in merged
    assert old.splitlines()[2] == merged.splitlines()[2]   # the date of the full run stays
    assert merged.splitlines()[3] == ("Rows re-measured later (`invoke bench --only NAME --merge`): "
                                      "vesp32 2026-11-25 17:00 UTC, bridge-mem 2026-11-25 17:00 UTC.")
    # merging again keeps the rows and updates the dates of the benches run
    again = merge_markdown(merged, [mem], when=datetime(2026, 11, 26, 9, 5, tzinfo=UTC))
    assert [ln for ln in again.splitlines() if ln.startswith("| ")] == rows
    assert again.splitlines()[3].endswith("vesp32 2026-11-25 17:00 UTC, bridge-mem 2026-11-26 09:05 UTC.")
    assert again.count("Rows re-measured later") == 1


def test_server_scale_figures_per_configuration() -> None:
    data = {"cpus": 2, "load_before": 1.5,
            "postgresql_w2": {"backend": "postgresql", "workers": 2, "load_1min": 1.7,
                              "checkins": {"per_s": 1800, "p50_ms": 40.1, "p99_ms": 90.5, "errors": 0},
                              "paced": {"target_per_s": 500.0, "per_s": 499, "p50_ms": 1.2, "p99_ms": 6.5,
                                        "errors": 0}}}
    figs = parse_server_scale("", data)
    assert [(f.metric, f.value) for f in figs] == [
        ("check-ins, postgresql, 2 workers", "1800/s"),
        ("check-ins paced at 500/s, postgresql, 2 workers", "p99 6.5 ms")]
    assert "load 1.7" in figs[0].note and parse_server_scale("", None) == []
