"""`invoke bench` (fota_lab.bench, benchjson, benchstore): the figures come from each script's
``--json`` file, a run replaces only the rows of the benchmarks it ran, and a script that fails or
writes no valid JSON is reported by name while the stored rows stay. The scripts here are stand-ins
written into a temporary bench/ folder; the real ones are checked for their ``--json`` option."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fota_formats.errors import FotaError
from fota_lab import benchjson
from fota_lab.bench import ALL, BENCHES, SUITE, BenchRun, format_table, run_bench, save_results
from fota_lab.benchjson import BenchJsonError, Figure, read, write
from fota_lab.benchstore import load_store

ROOT = Path(__file__).resolve().parents[2]
BOOT = "boot time (reset to application)"
LINK_FIGURES = [
    {"group": "update (BEGIN..ACTIVATE, virtual time)", "name": "64 KB into slot B (1 sectors)",
     "value": 1.292, "unit": "s", "notes": "lower bound 1.262 s, ratio 1.024"},
    {"group": "wire efficiency", "name": "64 KB image", "value": 1.021, "unit": "SPI bytes per image byte"},
    {"group": BOOT, "name": "confirmed image", "value": 24.9, "unit": "ms"},
]
TWIN_FIGURES = [{"group": "twin speed", "name": "bootloader start-up to the jump", "value": 48.8,
                 "unit": "M instructions/s", "host_s": 0.02}]


def stand_in(bench_dir: Path, bench: str, document: object, stdout: str = "human-readable lines\n") -> None:
    """bench/<script> for ``bench``: prints ``stdout`` and writes ``document`` as its --json file."""
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / BENCHES[bench].script).write_text(
        "import json, sys\n"
        f"print({stdout!r}, end='')\n"
        "path = sys.argv[sys.argv.index('--json') + 1]\n"
        f"open(path, 'w').write(json.dumps({document!r}))\n")


def script(bench_dir: Path, bench: str, body: str) -> None:
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / BENCHES[bench].script).write_text(body)


def quiet(_: str) -> None:
    pass


def test_a_script_s_json_is_the_figures_and_its_printed_lines_are_ignored(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench"
    stand_in(bench_dir, "link", {"schema": 1, "bench": "link", "figures": LINK_FIGURES},
             stdout="boot, reset to the application: confirmed image 99.9 ms\n")
    run = run_bench(BENCHES["link"], bench_dir, log=quiet)
    assert run.ok, run.error
    assert [(f.group, f.name, f.value_text(), f.detail()) for f in run.figures] == [
        ("update (BEGIN..ACTIVATE, virtual time)", "64 KB into slot B (1 sectors)", "1.292 s",
         "lower bound 1.262 s, ratio 1.024"),
        ("wire efficiency", "64 KB image", "1.021 SPI bytes per image byte", ""),
        (BOOT, "confirmed image", "24.9 ms", ""),
    ]
    assert "99.9" not in format_table([run])


def test_the_schema_example_runs() -> None:
    result = doctest.testmod(benchjson)
    assert result.attempted > 0 and result.failed == 0


def test_write_then_read_keeps_every_field(tmp_path: Path) -> None:
    figures = [Figure(group="twin speed", name="boot", value=48.8, unit="M instructions/s", host_s=0.02),
               Figure(group="bridge heap", name="peak", value=86416, unit="B", notes="modules included")]
    write(tmp_path / "f.json", "twin", figures)
    assert json.loads((tmp_path / "f.json").read_text())["bench"] == "twin"
    assert read(tmp_path / "f.json", "twin") == figures
    assert [f.detail() for f in figures] == ["0.02 s host time", "modules included"]


@pytest.mark.parametrize(("document", "problem"), [
    ("not json at all", "f.json is not JSON"),
    ({"schema": 1, "bench": "twin", "figures": []}, "figures: List should have at least 1 item"),
    ({"schema": 1, "bench": "twin", "figures": [{"group": "g", "name": "n", "value": 1}]},
     "figures.0.unit: Field required"),
    ({"schema": 1, "bench": "twin", "figures": [{"group": "g", "name": "n", "value": "fast", "unit": "s"}]},
     "figures.0.value"),
    ({"schema": 1, "bench": "twin", "figures": [{"group": "g", "name": "n", "value": True, "unit": "s"}]},
     "figures.0.value"),
    ({"schema": 2, "bench": "twin", "figures": TWIN_FIGURES}, "schema: Input should be 1"),
    ({"schema": 1, "bench": "twin", "figures": TWIN_FIGURES, "extra": 1}, "extra: Extra inputs"),
    ({"schema": 1, "bench": "link", "figures": TWIN_FIGURES}, "holds the figures of 'link', expected 'twin'"),
])
def test_a_file_off_the_schema_names_what_is_wrong(tmp_path: Path, document: object, problem: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(BenchJsonError, match=r"f\.json") as e:
        read(path, "twin")
    assert problem in str(e.value)


def test_only_one_bench_replaces_its_rows_and_keeps_every_other(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench"
    stand_in(bench_dir, "link", {"schema": 1, "bench": "link", "figures": LINK_FIGURES})
    stand_in(bench_dir, "twin", {"schema": 1, "bench": "twin", "figures": TWIN_FIGURES})
    save_results([run_bench(BENCHES[n], bench_dir, log=quiet) for n in ("link", "twin")], bench_dir)
    before = load_store(bench_dir / "results.json")

    newer = [{**LINK_FIGURES[2], "value": 21.6}]
    stand_in(bench_dir, "link", {"schema": 1, "bench": "link", "figures": newer})
    save_results([run_bench(BENCHES["link"], bench_dir, log=quiet)], bench_dir)   # invoke bench --only link
    after = load_store(bench_dir / "results.json")
    assert after.benches["twin"] == before.benches["twin"]
    assert [f.value for f in after.benches["link"].figures] == [21.6]
    assert after.benches["link"].measured > before.benches["link"].measured
    assert after.benches["link"].load is not None and after.benches["link"].cpus
    md = (bench_dir / "results.md").read_text()
    assert "| twin speed | bootloader start-up to the jump | 48.8 M instructions/s | 0.02 s host time |" in md
    assert f"| {BOOT} | confirmed image | 21.6 ms |  |" in md and "24.9 ms" not in md
    assert "wire efficiency" not in md          # the link rows are this run's, not the old ones plus new
    table = [ln.split(" | ")[0][2:] for ln in md.split("| bench | measured")[1].splitlines()[2:] if ln]
    assert table == ["link", "twin"]


@pytest.mark.parametrize(("body", "error"), [
    ("raise SystemExit('bench: the application did not come up')\n",
     "bench_twin.py failed: bench: the application did not come up"),
    ("print('1. app main loop: 1.9 M instructions/s')\n",
     "bench_twin.py exited 0 but no JSON file written at twin.json"),
    ("import sys\nopen(sys.argv[sys.argv.index('--json') + 1], 'w').write('{\"bench\": \"twin\"}')\n",
     "bench_twin.py exited 0 but twin.json does not follow the bench schema 1: figures: Field required"),
])
def test_a_failed_or_silent_bench_is_reported_and_its_stored_rows_stay(tmp_path: Path, body: str,
                                                                       error: str) -> None:
    bench_dir = tmp_path / "bench"
    stand_in(bench_dir, "twin", {"schema": 1, "bench": "twin", "figures": TWIN_FIGURES})
    stand_in(bench_dir, "link", {"schema": 1, "bench": "link", "figures": LINK_FIGURES})
    save_results([run_bench(BENCHES[n], bench_dir, log=quiet) for n in ("twin", "link")], bench_dir)
    stored = load_store(bench_dir / "results.json").benches["twin"]

    script(bench_dir, "twin", body)
    run = run_bench(BENCHES["twin"], bench_dir, log=quiet)
    assert not run.ok and run.figures == [] and run.error == error
    row = format_table([run]).splitlines()[2]
    assert [cell.strip() for cell in row.split(" | ")] == ["twin", "NOT MEASURED", "-", error]
    save_results([run], bench_dir)
    entry = load_store(bench_dir / "results.json").benches["twin"]
    assert entry.figures == stored.figures and entry.measured == stored.measured
    assert entry.failed is not None and entry.failed.error == error
    md = (bench_dir / "results.md").read_text()
    assert "| twin speed | bootloader start-up to the jump | 48.8 M instructions/s |" in md
    assert f"{error} |" in md.split("| bench | measured")[1]
    assert "NOT MEASURED" not in md and "| update (BEGIN..ACTIVATE, virtual time) |" in md

    stand_in(bench_dir, "twin", {"schema": 1, "bench": "twin", "figures": TWIN_FIGURES})
    save_results([run_bench(BENCHES["twin"], bench_dir, log=quiet)], bench_dir)
    assert load_store(bench_dir / "results.json").benches["twin"].failed is None


def test_a_bench_never_measured_shows_not_measured_with_the_reason(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    missing = run_bench(BENCHES["server"], bench_dir, log=quiet)
    assert not missing.ok and missing.error == "bench_server.py does not exist"
    suite = BenchRun(SUITE, True, 154.2, [Figure(group="test suite", name="full suite, 2 workers", value=154,
                                                 unit="s", notes="548 passed")],
                     when=datetime(2026, 11, 25, 16, 34, tzinfo=UTC), load=(1.5, 1.25, 1.0))
    save_results([missing, suite], bench_dir)
    md = (bench_dir / "results.md").read_text()
    assert "| server | NOT MEASURED | - | bench_server.py does not exist |" in md
    assert "| suite | 2026-11-25 16:34 UTC | 1.50 / 1.25 / 1.00 | " in md
    assert md.index("| server | NOT MEASURED") < md.index("| test suite |")


def test_a_hand_broken_store_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema": 1, "benches": {"link": {"figures": [{}]}}}))
    with pytest.raises(FotaError, match=r"results\.json: benches\.link\.figures\.0\.group: Field required"):
        load_store(tmp_path / "results.json")


def test_every_real_bench_script_takes_json_and_the_stored_results_are_valid() -> None:
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "bench" / BENCHES[name].script), "--help"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for name in ALL}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "--json" in out, f"{BENCHES[name].script}: {err.strip()}"
    store = load_store(ROOT / "bench" / "results.json")
    assert set(store.benches) <= {*ALL, SUITE} and all(e.figures for e in store.benches.values())


def test_invoke_bench_has_no_merge_flag_any_more() -> None:
    r = subprocess.run([sys.executable, "-m", "invoke", "--help", "bench"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "--only" in r.stdout and "--no-save" in r.stdout and "--merge" not in r.stdout
