"""Benchmark of the virtual ESP32 (docs/virtual-esp32.md): start-up, mpremote round trips, file
copy, and one 256 KB update through the bridge on the STM32 twin.

    .venv/bin/python bench/bench_vesp32.py               # builds the firmware in a temp dir
    .venv/bin/python bench/bench_vesp32.py --no-update   # the serial figures only (no build)
    .venv/bin/python bench/bench_vesp32.py --json v.json # also the figures as JSON (fota_lab.benchjson)

Prints host (wall-clock) figures, medians of several runs:
1. start-up: VirtualEsp32.start() until MicroPython runs (Node start, WebAssembly, stand-ins);
2. mpremote: `mpremote connect <pty> exec pass` as a process (Python start-up and the soft reset
   included), the same with `resume` (no soft reset), and one exec of an open connection;
3. `mpremote fs cp` of a 64 KB file onto the device;
4. an update A -> B of a 256 KB image (the real v1.0.0 slot-B application padded with random
   bytes) with `run_update` (the code of `invoke update`) against a local HTTP server: the host
   time, the bridge's own duration line (the ESP32's clock, shared with the twin), and the peak
   of gc.mem_alloc() during the cycle (an upper bound: this port collects garbage only between
   programs, see docs/virtual-esp32.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from esp32_twin import FakePeer, VirtualEsp32

ROOT = Path(__file__).resolve().parents[1]
KB = 1024
GROUP = "virtual ESP32 (host time)"
FIGURES: list[dict[str, object]] = []     # what --json writes, in the form of fota_lab.benchjson.Figure


def _median_s(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def _mpremote(port: str, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        raise SystemExit(f"bench_vesp32: mpremote {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def figure(name: str, value: float, unit: str, notes: str) -> None:
    FIGURES.append({"group": GROUP, "name": name, "value": value, "unit": unit, "notes": notes})


def bench_serial(runs: int, tmp: Path) -> None:
    def ms(name: str, med: float, notes: str, digits: int = 0) -> None:
        figure(name, round(med * 1000, digits) if digits else round(med * 1000), "ms", notes)

    starts = []
    for i in range(runs):
        esp = VirtualEsp32(FakePeer(), fs_dir=tmp / f"fs{i}")
        esp.start()
        starts.append(esp.started_s)
        esp.stop()
    print(f"start-up: {statistics.median(starts) * 1000:.0f} ms "
          f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f}, {runs} runs)")
    ms("start-up", statistics.median(starts),
       f"min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f}, {runs} runs")

    with VirtualEsp32(FakePeer(), fs_dir=tmp / "fs") as esp:
        med, lo, hi = _median_s(lambda: _mpremote(esp.port, "exec", "pass"), runs)
        print(f"mpremote exec (process, soft reset): {med * 1000:.0f} ms "
              f"(min {lo * 1000:.0f}, max {hi * 1000:.0f})")
        ms("mpremote exec (process, soft reset)", med, f"min {lo * 1000:.0f}, max {hi * 1000:.0f}")
        med, lo, hi = _median_s(lambda: _mpremote(esp.port, "resume", "exec", "pass"), runs)
        print(f"mpremote resume exec (process): {med * 1000:.0f} ms "
              f"(min {lo * 1000:.0f}, max {hi * 1000:.0f})")
        ms("mpremote resume exec (process)", med, f"min {lo * 1000:.0f}, max {hi * 1000:.0f}")

        from mpremote.transport_serial import SerialTransport

        transport = SerialTransport(esp.port, baudrate=115200)
        try:
            transport.enter_raw_repl(soft_reset=False)
            med, lo, hi = _median_s(lambda: transport.exec("pass"), 50)
            print(f"exec round trip (open connection, raw-paste): {med * 1000:.1f} ms "
                  f"(min {lo * 1000:.1f}, max {hi * 1000:.1f}, 50 runs)")
            ms("exec round trip (open connection, raw-paste)", med,
               f"min {lo * 1000:.1f}, max {hi * 1000:.1f}, 50 runs", digits=1)
            transport.exit_raw_repl()
        finally:
            transport.close()

        src = tmp / "blob.bin"
        src.write_bytes(bytes(range(256)) * (64 * KB // 256))
        med, lo, hi = _median_s(lambda: _mpremote(esp.port, "fs", "cp", str(src), ":blob.bin"), 3)
        print(f"mpremote fs cp 64 KB: {med:.2f} s, {64 / med:.0f} KB/s (min {lo:.2f} s, max {hi:.2f} s)")
        figure("mpremote fs cp 64 KB", round(med, 2), "s",
               f"{64 / med:.0f} KB/s, min {lo:.2f} s, max {hi:.2f} s")


def bench_update(tmp: Path) -> None:
    from esp32_twin.twin_peer import TwinPeer
    from fota_lab.devices import boot_twin
    from fota_lab.fakes import FakeServer
    from fota_lab.images import restamp
    from stm32_fota.build import build
    from stm32_fota.esp32 import deploy, run_update

    fw = build("1.0.0", 0, tmp / "fw")
    image = restamp((fw.build_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=256 * KB)
    board = boot_twin(fw.build_dir)
    with FakeServer(image, "1.1.0", "B") as srv, \
            VirtualEsp32(TwinPeer(board), board=board, fs_dir=tmp / "fs-update") as esp:
        deploy(esp.port, None, {"server": srv.url, "wifi_ssid": "lab", "wifi_password": "pw"},
               build_dir=tmp / "mpy")
        lines: list[str] = []
        t0 = time.perf_counter()
        result = run_update(esp.port, lines.append, timeout_s=600)
        host_s = time.perf_counter() - t0
        peak, heap = map(int, _mpremote(esp.port, "resume", "exec",
                                        "import gc, vgc\nprint(gc.peak(), vgc.HEAP_BYTES)").split())
        final = next((ln for ln in reversed(lines) if ln.startswith("fota: result")), "no result line")
        print(f"update 256 KB A -> B: {result.outcome}, {host_s:.1f} s host; bridge says: {final}")
        print(f"update 256 KB peak gc.mem_alloc(): {peak / KB:.1f} KB of a {heap / KB:.0f} KB heap "
              "(upper bound: garbage of the cycle included)")
        figure("update 256 KB A -> B via the bridge", round(host_s, 1), "s",
               f"{result.outcome}; bridge: {final}")
        figure("update 256 KB: peak gc.mem_alloc()", round(peak / KB, 1), "KB",
               f"of a {heap / KB:.0f} KB heap (upper bound: the cycle's garbage included)")
    board.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per serial figure (default 5)")
    p.add_argument("--no-update", action="store_true", help="skip the 256 KB update (needs a firmware build)")
    p.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vesp32-") as tmp:
        bench_serial(a.runs, Path(tmp))
        if not a.no_update:
            bench_update(Path(tmp))
    if a.json:
        from fota_lab.benchjson import Figure, write

        write(a.json, "vesp32", [Figure.model_validate(f) for f in FIGURES])


if __name__ == "__main__":
    main()
