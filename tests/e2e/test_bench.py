"""`invoke bench` (stm32_fota.bench): the figures it reads from the benchmark scripts' own output,
and what it says when a script is missing, fails or prints nothing it understands. The scripts are
stand-ins written into a temporary bench/ folder, printing in the real scripts' formats."""

from __future__ import annotations

import json
from pathlib import Path

from stm32_fota.bench import BENCHES, Bench, format_table, markdown, parse_link, parse_twin, run_bench

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
