"""Benchmark of the update server on loopback: check-ins of many bridges, and image downloads.

    .venv/bin/python bench/bench_server.py                 # default: 200 bridges, 50 downloads
    .venv/bin/python bench/bench_server.py --json bench/results-local.json   # fota_lab.benchjson

The server runs as in production (uvicorn, one worker, in its own process, with the uvicorn options
and both tokens of ``fota-server``) with a release of two ~200 KB slot images and a fresh SQLite
registry. Each bridge sends the device token; the per-device rate limit is raised far above what
the simulated bridges send (they check in as fast as they can, a real bridge once an hour), so
that its cost is measured but it refuses nothing. The client is a minimal asyncio HTTP/1.1 client
in this process, so that the figures measure the server rather than a heavy client library.

1. Check-ins: ``--bridges`` concurrent simulated bridges, each with its own device ID, each sending
   ``--checkins`` check-ins one after the other. Every check-in is answered with an update offer
   (the heaviest path: registry upsert, history lookup, open update row). Two connection modes:
   ``close`` (a new TCP connection per request, what the ESP32 bridge does) and ``keep-alive``.
   Prints check-ins per second and the latency percentiles (p50, p99, max).
2. Downloads: ``--downloads`` concurrent downloads of a whole slot image, ``--rounds`` each.
   Prints the aggregate throughput.
3. A fleet (``--fleet``, default 10,000 devices, 0: skipped): every device checks in once, so the
   registry holds the fleet; then ``--rollouts`` rollouts of the release are created through the
   operator API (default 3: a group's 10% -> 50% -> 100%, 1% -> 10% -> 100% of everyone, and a list
   of 100 devices; 0 measures the server without rollouts, which offers the release to every
   device), and the bridges check in as random devices of the fleet (keep-alive). The issue's
   target: with 3 active rollouts, within 10% of the rate without rollouts.

Goal: >= 1000 check-ins/s and p99 <= 20 ms on 2 cores. Every loop is bounded; the
server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fota_lab.benchjson import Figure
from fota_lab.images import install_release
from fota_lab.locals3 import free_port
from fota_server.firmware import FirmwareFolder

ROOT = Path(__file__).resolve().parents[1]

VERSION = "1.1.0"
IMAGE_BODY = 200_000
SERVER_START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0

DEVICE_TOKEN = "bench-device-token"
OPERATOR_TOKEN = "bench-operator-token"
_SERVER = f"""
import sys, uvicorn
from pathlib import Path
from fota_server.app import ServerSettings, create_app
from fota_server.protocol import uvicorn_options
app = create_app(ServerSettings(firmware_dir=Path(sys.argv[1]), db_path=Path(sys.argv[2]),
                                token={DEVICE_TOKEN!r}, operator_token={OPERATOR_TOKEN!r},
                                device_rate="1000000/minute"))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False,
            **uvicorn_options())
"""


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    def percentile(self, p: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


class Http:
    """The smallest HTTP/1.1 client that reads Content-Length bodies (all this server sends)."""

    def __init__(self, port: int, keep_alive: bool, token: str = DEVICE_TOKEN) -> None:
        self.port = port
        self.keep_alive = keep_alive
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        conn = "keep-alive" if self.keep_alive else "close"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: {conn}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        if not self.keep_alive:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report the server's cost per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(label: str, r: Result, cpu_ms: float) -> str:
    return (
        f"check-ins, {label}: {r.requests} in {r.seconds:.2f} s = {r.requests / r.seconds:.0f}/s; "
        f"latency p50 {r.percentile(50):.1f} ms, p99 {r.percentile(99):.1f} ms, "
        f"max {max(r.latencies_ms):.1f} ms; "
        f"errors {r.errors}; server CPU {cpu_ms:.2f} ms/request"
    )


def latencies(r: Result) -> str:
    return (f"p99 {r.percentile(99):.2f} ms, p50 {r.percentile(50):.2f} ms, "
            f"max {max(r.latencies_ms):.2f} ms, errors {r.errors}")


FLEET_GROUPS = 4  # fleet devices report a group ("g0".."g3") when rollouts are measured


def checkin_body(i: int, group: bool = False) -> bytes:
    slot = "AB"[i % 2]
    other = "BA"[i % 2]
    body = {
        "device_id": f"{i:024x}",
        "running_slot": slot,
        "running_version": "1.0.0",
        "slots": {
            slot: {"state": "valid", "version": "1.0.0"},
            other: {"state": "empty", "version": None},
        },
    }
    if group:
        body["group"] = f"g{i % FLEET_GROUPS}"
    return json.dumps(body).encode()


def fleet_rollouts(count: int) -> list[dict[str, object]]:
    """The rollouts of the fleet case (cycled when more than three are asked for)."""
    kinds: list[dict[str, object]] = [
        {"target": {"group": "g1"}, "stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}]},
        {"target": {"all": True}, "stages": [{"percent": 1}, {"percent": 10}, {"percent": 100}]},
        {"target": {"devices": [f"{i:024x}" for i in range(0, 1000, 10)]}, "stages": [{"percent": 100}]},
    ]
    return [{"version": VERSION, "name": f"bench {k}", **kinds[k % len(kinds)]} for k in range(count)]


async def fleet_bridge(port: int, ids: list[int], group: bool, latencies: list[float],
                       errors: list[int]) -> None:
    http = Http(port, keep_alive=True)
    try:
        for i in ids:
            t0 = time.perf_counter()
            status, _data = await asyncio.wait_for(
                http.request("POST", "/api/v1/checkin", checkin_body(i, group)), REQUEST_TIMEOUT_S)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors.append(status)
    finally:
        await http.close()


async def run_fleet(port: int, bridges: int, ids: list[int], group: bool) -> Result:
    latencies: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(fleet_bridge(port, ids[b::bridges], group, latencies, errors)
                           for b in range(bridges)))
    return Result(len(latencies), time.perf_counter() - t0, latencies, len(errors))


def create_rollouts(port: int, count: int) -> None:
    for body in fleet_rollouts(count):
        status, data = asyncio.run(Http(port, False, OPERATOR_TOKEN).request(
            "POST", "/api/v1/rollouts", json.dumps(body).encode()))
        if status != 201:
            raise SystemExit(f"bench: creating a rollout failed: HTTP {status}: {data[:300]!r}")


async def bridge(
    i: int, port: int, n: int, keep_alive: bool, latencies: list[float], errors: list[int]
) -> None:
    http = Http(port, keep_alive)
    body = checkin_body(i)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            status, data = await asyncio.wait_for(
                http.request("POST", "/api/v1/checkin", body), REQUEST_TIMEOUT_S
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200 or b'"update":true' not in data:
                errors.append(status)
    finally:
        await http.close()


async def paced_bridge(
    i: int, port: int, n: int, interval: float, start: float, latencies: list[float], errors: list[int]
) -> None:
    """Check in every ``interval`` seconds from ``start``; latency counts from the scheduled time, so a
    server that falls behind is charged for the wait (no coordinated omission)."""
    body = checkin_body(i)
    for k in range(n):
        due = start + k * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        http = Http(port, keep_alive=False)
        status, data = await asyncio.wait_for(
            http.request("POST", "/api/v1/checkin", body), REQUEST_TIMEOUT_S
        )
        latencies.append((time.perf_counter() - due) * 1000)
        if status != 200 or b'"update":true' not in data:
            errors.append(status)


async def run_paced(port: int, bridges: int, per_bridge: int, rate: float) -> Result:
    latencies: list[float] = []
    errors: list[int] = []
    interval = bridges / rate
    t0 = time.perf_counter() + 0.2
    # bridges start spread evenly over one interval, as independent devices would
    await asyncio.gather(
        *(
            paced_bridge(i, port, per_bridge, interval, t0 + interval * i / bridges, latencies, errors)
            for i in range(bridges)
        )
    )
    return Result(len(latencies), time.perf_counter() - t0, latencies, len(errors))


async def run_checkins(port: int, bridges: int, per_bridge: int, keep_alive: bool) -> Result:
    latencies: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(
        *(bridge(i, port, per_bridge, keep_alive, latencies, errors) for i in range(bridges))
    )
    return Result(len(latencies), time.perf_counter() - t0, latencies, len(errors))


async def downloader(port: int, url: str, rounds: int, size: int, errors: list[int]) -> int:
    got = 0
    http = Http(port, keep_alive=False)
    for _ in range(rounds):
        status, data = await asyncio.wait_for(http.request("GET", url), REQUEST_TIMEOUT_S)
        if status != 200 or len(data) != size:
            errors.append(status)
        got += len(data)
    return got


async def run_downloads(
    port: int, concurrent: int, rounds: int, url: str, size: int
) -> tuple[int, float, int]:
    errors: list[int] = []
    t0 = time.perf_counter()
    totals = await asyncio.gather(*(downloader(port, url, rounds, size, errors) for _ in range(concurrent)))
    return sum(totals), time.perf_counter() - t0, len(errors)


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    folder = FirmwareFolder(tmp / "firmware")
    install_release(folder, tmp, VERSION, body=IMAGE_BODY)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(folder.root), str(tmp / "server.db"), str(port)], cwd=ROOT
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the server exited with code {proc.returncode}")
        try:
            status, _ = asyncio.run(Http(port, False, OPERATOR_TOKEN).request("GET", "/api/v1/status"))
            if status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("bench: the server did not start")


def fleet_case(port: int, pid: int, args: argparse.Namespace) -> Figure:
    group = args.rollouts > 0
    asyncio.run(run_fleet(port, args.bridges, list(range(args.fleet)), group))  # the registry holds the fleet
    if args.rollouts:
        create_rollouts(port, args.rollouts)
    ids = random.Random(1).choices(range(args.fleet), k=args.fleet_checkins)
    cpu0 = cpu_seconds(pid)
    r = asyncio.run(run_fleet(port, args.bridges, ids, group))
    cpu_ms = (cpu_seconds(pid) - cpu0) / r.requests * 1000
    label = f"{args.fleet} devices, {args.rollouts} active rollouts"
    print(describe(f"{label}, {args.bridges} bridges keep-alive", r, cpu_ms))
    return Figure(group="server", name=f"check-ins, {label}", value=round(r.requests / r.seconds),
                  unit="check-ins/s", notes=f"{latencies(r)}, {args.bridges} bridges keep-alive, "
                                            f"server CPU {cpu_ms:.3f} ms per request")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridges", type=int, default=200, help="concurrent simulated bridges (default 200)")
    ap.add_argument("--checkins", type=int, default=25, help="check-ins per bridge and mode (default 25)")
    ap.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="total check-in rate of the paced run, per second (default 1000)",
    )
    ap.add_argument("--downloads", type=int, default=50, help="concurrent image downloads (default 50)")
    ap.add_argument("--rounds", type=int, default=4, help="downloads per downloader (default 4)")
    ap.add_argument("--fleet", type=int, default=10_000, help="devices of the fleet case (0: skipped)")
    ap.add_argument("--fleet-checkins", type=int, default=20_000,
                    help="check-ins measured in the fleet case (default 20000)")
    ap.add_argument("--rollouts", type=int, default=3, help="active rollouts in the fleet case (default 3)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = ap.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from fota_lab.benchjson import write

    load = os.getloadavg()[0]
    figures: list[Figure] = []
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {load:.2f} before the run")
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp_s:
        proc, port = start_server(Path(tmp_s))
        try:
            asyncio.run(run_checkins(port, args.bridges, 2, True))  # warm-up: rows exist, code paths hot
            for mode, keep in (("close", False), ("keep-alive", True)):
                cpu0 = cpu_seconds(proc.pid)
                r = asyncio.run(run_checkins(port, args.bridges, args.checkins, keep))
                cpu_ms = (cpu_seconds(proc.pid) - cpu0) / r.requests * 1000
                rate = r.requests / r.seconds
                label = "new connection each" if mode == "close" else mode
                mean = statistics.fmean(r.latencies_ms)
                figures.append(Figure(
                    group="server", name=f"check-ins, {label}", value=round(rate), unit="check-ins/s",
                    notes=f"{latencies(r)}, mean {mean:.2f} ms, {args.bridges} bridges, "
                          f"server CPU {cpu_ms:.3f} ms per request"))
                print(describe(f"{args.bridges} bridges, connection {mode}", r, cpu_ms))
            cpu0 = cpu_seconds(proc.pid)
            r = asyncio.run(run_paced(port, args.bridges, args.checkins, args.rate))
            cpu_ms = (cpu_seconds(proc.pid) - cpu0) / r.requests * 1000
            figures.append(Figure(
                group="server", name="check-ins, paced", value=round(r.requests / r.seconds),
                unit="check-ins/s",
                notes=f"{latencies(r)}, target {args.rate:.0f}/s, server CPU {cpu_ms:.3f} ms per request"))
            print(describe(f"{args.bridges} bridges paced at {args.rate:.0f}/s, connection close", r, cpu_ms))
            if r.requests / r.seconds < 0.95 * args.rate:
                print("  note: the server fell behind the target rate; the latencies include the backlog")
            _status, body = asyncio.run(Http(port, False).request("POST", "/api/v1/checkin", checkin_body(0)))
            offer = json.loads(body)
            total, secs, errors = asyncio.run(
                run_downloads(port, args.downloads, args.rounds, offer["url"], offer["size"])
            )
            mbps = total / secs / 1e6
            figures.append(Figure(group="server", name=f"downloads, {args.downloads} concurrent",
                                  value=round(mbps, 1), unit="MB/s",
                                  notes=f"{args.rounds} x {offer['size']} bytes each, errors {errors}"))
            print(
                f"downloads, {args.downloads} concurrent x {args.rounds} of {offer['size']} bytes: "
                f"{total / 1e6:.1f} MB in {secs:.2f} s = {mbps:.1f} MB/s; errors {errors}"
            )
            if args.fleet:
                figures.append(fleet_case(port, proc.pid, args))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        write(args.json, "server", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
