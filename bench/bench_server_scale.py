"""Load benchmark of the update server past one process: 1, 2 and 4 uvicorn workers on PostgreSQL,
and SQLite with one worker, all on this machine.

    .venv/bin/python bench/bench_server_scale.py                  # ~2 minutes on 2 cores
    .venv/bin/python bench/bench_server_scale.py --json bench/results-local-scale.json

Each configuration runs the real command line (``python -m fota_server --workers N --no-sync``)
with a fresh registry and a release of two ~200 KB slot images, then drives it with the simulated
bridges of bench/bench_server.py (the same client, the same check-in bodies; every check-in is
answered with an update offer, the heaviest path):

1. saturation: ``--bridges`` bridges check in ``--checkins`` times each, one after the other, a new
   TCP connection per request (as the ESP32 does): check-ins per second and latency percentiles;
2. paced: the same bridges at a fixed total ``--rate``: the latency a fleet of that size sees.

PostgreSQL is Debian's server, started for the run in a temporary directory on a unix socket, with
fsync on and ``synchronous_commit=off`` (a commit returns before its WAL is flushed, as SQLite in
WAL mode with synchronous=NORMAL does). Everything shares the machine: the client, the workers and
PostgreSQL; the 1-minute load average is printed before each configuration. The server's CPU time
(parent and workers) and PostgreSQL's are given per check-in.

Figures (``--json``): ``cpus``, ``load_before``, ``load_after``, and per configuration
``<backend>_w<N>`` (``sqlite_w1``, ``postgresql_w1``, ``postgresql_w2``, ``postgresql_w4``) a dict
with ``workers``, ``backend``, ``load_1min``, ``checkins`` (per_s, p50_ms, p99_ms, max_ms, errors,
server_cpu_ms, db_cpu_ms) and ``paced`` (target_per_s, per_s, p50_ms, p99_ms, max_ms, errors).
Every loop is bounded; the servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_server import Http, Result, cpu_seconds, run_checkins, run_paced  # the script's own folder
from fota_lab.images import install_release
from fota_lab.locals3 import free_port
from fota_lab.postgres import PostgresServer
from fota_server.firmware import FirmwareFolder

VERSION = "1.1.0"
IMAGE_BODY = 200_000
START_TIMEOUT_S = 60.0
PG_SETTINGS = {"synchronous_commit": "off", "max_connections": "200"}
CONFIGS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4))


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its living children (the uvicorn workers, PostgreSQL's backends)."""
    total = cpu_seconds(pid)
    for child in _children(pid):
        total += process_tree_cpu(child)
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the process or thread ended meanwhile
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def start_server(tmp: Path, database: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    folder = FirmwareFolder(tmp / "firmware")
    install_release(folder, tmp, VERSION, body=IMAGE_BODY)
    config = tmp / "fota.toml"
    config.write_text(f'[server]\ndatabase_url = "{database}"\n'
                      f'[paths]\nstate_dir = "{tmp / "state"}"\nfirmware_dir = "{folder.root}"\n')
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 (the server writes it while it runs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fota_server", "--config", str(config), "--port", str(port), "--no-sync",
         "--workers", str(workers), "--log-level", "warning"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the server exited with code {proc.returncode}:\n"
                             f"{(tmp / 'server.log').read_text()[-2000:]}")
        try:
            status, _ = asyncio.run(Http(port, False).request("GET", "/api/v1/status"))
            if status == 200 and len(_children(proc.pid)) >= (workers if workers > 1 else 0):
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("bench: the server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def figures(r: Result) -> dict[str, Any]:
    return {"requests": r.requests, "per_s": round(r.requests / r.seconds),
            "p50_ms": round(r.percentile(50), 2), "p99_ms": round(r.percentile(99), 2),
            "max_ms": round(max(r.latencies_ms), 2), "errors": r.errors}


def run_config(tmp: Path, backend: str, workers: int, pg: PostgresServer | None,
               args: argparse.Namespace) -> dict[str, Any]:
    database = f"sqlite:///{tmp / 'server.db'}" if pg is None else pg.create_database()
    load = os.getloadavg()[0]
    proc, port = start_server(tmp, database, workers)
    try:
        asyncio.run(run_checkins(port, args.bridges, 2, True))  # warm-up: rows exist, code paths hot
        cpu0 = process_tree_cpu(proc.pid)
        db0 = process_tree_cpu(pg.postmaster_pid()) if pg else 0.0
        r = asyncio.run(run_checkins(port, args.bridges, args.checkins, False))
        server_ms = (process_tree_cpu(proc.pid) - cpu0) / r.requests * 1000
        db_ms = ((process_tree_cpu(pg.postmaster_pid()) - db0) / r.requests * 1000) if pg else 0.0
        sat = {**figures(r), "server_cpu_ms": round(server_ms, 3), "db_cpu_ms": round(db_ms, 3)}
        paced = {"target_per_s": args.rate,
                 **figures(asyncio.run(run_paced(port, args.bridges, args.checkins, args.rate)))}
    finally:
        stop(proc)
    label = f"{backend}, {workers} worker{'s' if workers > 1 else ''}"
    print(f"{label:<24} load {load:4.2f} | saturated: {sat['per_s']:5d} check-ins/s, "
          f"p50 {sat['p50_ms']:6.1f} ms, p99 {sat['p99_ms']:6.1f} ms, errors {sat['errors']}, "
          f"CPU/check-in server {server_ms:.2f} ms"
          + (f" + PostgreSQL {db_ms:.2f} ms" if pg else "")
          + f" | paced {args.rate:.0f}/s: {paced['per_s']}/s, p50 {paced['p50_ms']:.1f} ms, "
            f"p99 {paced['p99_ms']:.1f} ms, errors {paced['errors']}")
    return {"backend": backend, "workers": workers, "load_1min": round(load, 2), "checkins": sat,
            "paced": paced}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridges", type=int, default=200, help="concurrent simulated bridges (default 200)")
    ap.add_argument("--checkins", type=int, default=25, help="check-ins per bridge and run (default 25)")
    ap.add_argument("--rate", type=float, default=250.0,
                    help="total check-in rate of the paced run, per second (default 250)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    for name in ("bridges", "checkins"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be 1 or more")
    if args.rate <= 0:
        ap.error("--rate must be above 0")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    load = os.getloadavg()[0]
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": round(load, 2)}
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {load:.2f} before the run; "
          f"{args.bridges} bridges x {args.checkins} check-ins, a new connection each")
    with PostgresServer.start(PG_SETTINGS) as pg:
        for backend, workers in CONFIGS:
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
                out[f"{backend}_w{workers}"] = run_config(Path(tmp), backend, workers,
                                                          pg if backend == "postgresql" else None, args)
    out["load_after"] = round(os.getloadavg()[0], 2)
    print(f"machine: 1-minute load average {out['load_after']:.2f} after the run")
    if args.json:
        from fota_lab.benchjson import write

        write(args.json, "server-scale", bench_figures(out))
    return 0


def bench_figures(out: dict[str, Any]) -> list[Any]:
    """The run as fota_lab.benchjson figures: check-ins/s and p99 per configuration."""
    from fota_lab.benchjson import Figure

    group = "server, past one process"
    figs = []
    for key, d in out.items():
        if not (isinstance(d, dict) and isinstance(d.get("checkins"), dict)):
            continue
        sat, paced = d["checkins"], d.get("paced") or {}
        what = f"{d['backend']}, {d['workers']} worker{'s' if d['workers'] > 1 else ''}"
        cpu = f"; CPU per check-in {sat['server_cpu_ms']} ms server + {sat['db_cpu_ms']} ms database"
        figs.append(Figure(group=group, name=f"check-ins, {what}", value=sat["per_s"], unit="/s",
                           notes=f"p99 {sat['p99_ms']} ms, p50 {sat['p50_ms']} ms, errors {sat['errors']}, "
                                 f"load {d['load_1min']} ({key}){cpu}"))
        if paced:
            figs.append(Figure(group=group, name=f"check-ins paced at {paced['target_per_s']:.0f}/s, {what}",
                               value=paced["p99_ms"], unit="ms p99",
                               notes=f"{paced['per_s']}/s, p50 {paced['p50_ms']} ms, "
                                     f"errors {paced['errors']}"))
    return figs


if __name__ == "__main__":
    sys.exit(main())
