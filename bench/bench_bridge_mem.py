"""Heap use of the ESP32 bridge during one 256 KB update, on the virtual ESP32 (docs/bridge.md,
Memory): how many bytes the bridge allocates per cycle and per chunk.

    .venv/bin/python bench/bench_bridge_mem.py                     # builds the firmware in a temp dir
    .venv/bin/python bench/bench_bridge_mem.py --fw-build DIR      # an existing build (slot-b.bin ...)

The WebAssembly port does not collect garbage while a program runs (docs/virtual-esp32.md), so the
growth of gc.mem_alloc() between two points of one program is exactly what the program allocated
in between. The bench deploys the bridge, then runs one update cycle A -> B of a 256 KB image
(`updater.Updater`, as `updater.update()` builds it) whose log function notes gc.mem_alloc() at
every progress line, and prints:

1. the heap after importing the bridge (its modules: live memory), and what creating the Link
   (its buffers), the HTTP client and the Updater takes;
2. the bytes allocated by the whole cycle (what an ESP32 collects as garbage as it goes);
3. the bytes allocated per chunk while streaming: the median growth between two progress lines
   (one line per 4 KB chunk; the lines that also send a progress report to the server are the max);
4. gc.peak(): the largest gc.mem_alloc() of the cycle, as bench/bench_vesp32.py prints it.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from esp32_twin import VirtualEsp32

ROOT = Path(__file__).resolve().parents[1]
KB = 1024

# Runs on the device: the cycle of updater.update(), with a log function that samples the heap.
_IMPORT = "import config, net, fotalink, hw, updater"
_LIVE = "import gc\nprint('live', gc.mem_alloc())"
_CYCLE = """\
import gc, config, net, fotalink, hw, updater
linked = gc.mem_alloc()
cfg = config.load()
http = net.Http(cfg["server"], cfg["token"], cfg["http_timeout_s"])
link = fotalink.Link(hw.Port(cfg))
marks = [0] * 256
n = [0]
def log(line):
    print(line)
    if line.startswith("fota: progress") and n[0] < 256:
        marks[n[0]] = gc.mem_alloc()
        n[0] += 1
def connect():
    net.wifi_connect(cfg["wifi_ssid"], cfg["wifi_password"], cfg["wifi_retries"], cfg["wifi_timeout_ms"])
u = updater.Updater(link, http, cfg, log=log, connect=connect)
start = gc.mem_alloc()
gc.peak(True)
u.cycle()
end = gc.mem_alloc()
print("mem", linked, start, end, gc.peak(), " ".join(str(marks[i]) for i in range(n[0])))
"""


def _mpremote(port: str, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        raise SystemExit(f"bench_bridge_mem: mpremote {' '.join(args[:1])} failed: {r.stderr.strip()}")
    return r.stdout


def bench(fw_dir: Path, tmp: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "bridge"))
    from esp32_twin.twin_peer import TwinPeer
    from fake_server import FakeServer
    from stm32_fota.esp32 import deploy
    from twin_helpers import boot_twin, restamp

    image = restamp((fw_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=256 * KB)
    board = boot_twin(fw_dir)
    try:
        with FakeServer(image, "1.1.0", "B") as srv, \
                VirtualEsp32(TwinPeer(board), board=board, fs_dir=tmp / "fs") as esp:
            deploy(esp.port, None, {"server": srv.url, "wifi_ssid": "lab", "wifi_password": "pw"},
                   build_dir=tmp / "mpy")
            _mpremote(esp.port, "exec", _IMPORT)
            # Between two programs the port collects: what is left is the bridge's modules.
            live = int(_mpremote(esp.port, "resume", "exec", _LIVE).split()[-1])
            out = _mpremote(esp.port, "resume", "exec", _CYCLE)
    finally:
        board.close()
    lines = out.splitlines()
    result = next((ln for ln in lines if ln.startswith("fota: result")), "no result line")
    mem = next((ln for ln in lines if ln.startswith("mem ")), None)
    if mem is None or not result.startswith("fota: result confirmed"):
        raise SystemExit(f"bench_bridge_mem: the cycle did not complete: {result}\n{out[-2000:]}")
    before, start, end, peak, *marks = map(int, mem.split()[1:])
    steps = [b - a for a, b in itertools.pairwise(marks)]
    chunks = len(marks)
    print(f"update {len(image) // KB} KB A -> B: {result}")
    print(f"bridge imported: {live} bytes in use after a collection ({live / KB:.1f} KB)")
    print(f"Link, Http, Updater created: {start - before} bytes")
    print(f"allocated by the cycle: {end - start} bytes ({(end - start) / KB:.1f} KB), "
          f"{(end - start) / chunks:.0f} bytes per chunk on average over {chunks} chunks")
    if steps:
        print(f"allocated per chunk while streaming: median {statistics.median(steps):.0f} bytes "
              f"(min {min(steps)}, max {max(steps)}: a chunk that also sends a progress report)")
        print(f"allocated while streaming: {marks[-1] - marks[0]} bytes over {len(steps)} chunks")
    print(f"peak gc.mem_alloc(): {peak} bytes ({peak / KB:.1f} KB; bridge and garbage included)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fw-build", type=Path, default=None,
                   help="an existing firmware build directory (default: a build of the working tree)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bridge-mem-") as tmp:
        fw_dir = a.fw_build
        if fw_dir is None:
            from stm32_fota.build import build
            fw_dir = build("1.0.0", 0, Path(tmp) / "fw").build_dir
        bench(fw_dir, Path(tmp))


if __name__ == "__main__":
    main()
