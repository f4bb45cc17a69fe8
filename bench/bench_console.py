"""Benchmark of the web console's pages with a fleet of 10,000 devices (SQLite registry).

    .venv/bin/python bench/bench_console.py                        # 10,000 devices, 20 rounds
    .venv/bin/python bench/bench_console.py --json console.json    # also the figures (fota_lab.benchjson)

The registry is filled as the console's tests fill it (fota_lab.consolelab.seed: two groups, two
versions, every third device with an update that ended confirmed, reverted, failed or is in
progress); then each page is requested ``--rounds`` times through the application (in process, with
the operator token) and the median and slowest times are printed: the first and the last page of
the device list (keyset pages: the same cost at the end), the list filtered by state, by group and
version, a search by part of an ID, the overview (counts over the whole fleet), a device page and
the live progress JSON. Goal: every page under 50 ms at 10,000 devices.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from fota_lab.benchjson import Figure, write
from fota_lab.consolelab import dev, seed
from fota_server.app import ServerSettings, create_app
from fota_server.registry import Registry

GOAL_MS = 50.0
OP_TOKEN = "bench-operator-token"
OP = {"Authorization": f"Bearer {OP_TOKEN}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    n = args.devices
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "server.db"
        t = time.perf_counter()
        reg = Registry(db)
        seed(reg, n)
        reg.close()
        print(f"registry of {n} devices filled in {time.perf_counter() - t:.1f} s")
        app = create_app(ServerSettings(firmware_dir=Path(tmp) / "fw", db_path=db, operator_token=OP_TOKEN,
                                        sync_on_start=False))
        c = TestClient(app, headers=OP)
        last = dev(n - 30)
        pages = [
            ("device list, first page", "/devices"),
            ("device list, last page (keyset)", f"/devices?after={last}"),
            ("device list, state reverted", "/devices?state=reverted"),
            ("device list, group east and version 1.1.0", "/devices?group=east&version=1.1.0"),
            ("device list, search by part of an ID", f"/devices?q={dev(n // 2)[-5:]}"),
            ("overview", "/"),
            ("device page", f"/devices/{dev(n // 3 * 3)}"),
            ("live progress JSON", "/live/progress.json"),
        ]
        figures = []
        worst = 0.0
        for name, url in pages:
            times = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                r = c.get(url)
                times.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    print(f"{url}: HTTP {r.status_code}: {r.text[:200]}", file=sys.stderr)
                    return 1
            med = statistics.median(times)
            worst = max(worst, med)
            print(f"{name:45s} median {med:7.2f} ms   max {max(times):7.2f} ms")
            figures.append(Figure(group=f"console pages, {n} devices", name=name, value=round(med, 2),
                                  unit="ms", notes=f"median of {args.rounds}; max {max(times):.1f} ms"))
    print(f"goal: every page under {GOAL_MS:.0f} ms: {'met' if worst < GOAL_MS else 'NOT met'}")
    if args.json:
        write(args.json, "console", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
