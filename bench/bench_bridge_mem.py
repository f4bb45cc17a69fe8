"""Heap use of the ESP32 bridge during one 256 KB update, on the virtual ESP32 (docs/bridge.md,
Memory): how many bytes the bridge allocates per cycle and per chunk.

    .venv/bin/python bench/bench_bridge_mem.py                     # builds the firmware in a temp dir
    .venv/bin/python bench/bench_bridge_mem.py --fw-build DIR      # an existing build (slot-b.bin ...)

The WebAssembly port does not collect garbage while a program runs (docs/virtual-esp32.md), so the
growth of gc.mem_alloc() between two points of one program is exactly what the program allocated
in between. The bench deploys the bridge, then runs one update cycle A -> B of a 256 KB image
(`updater.Updater`, as `updater.update()` builds it) whose log function notes gc.mem_alloc() at
every progress line (fota_lab.heap_probe), and prints:

1. the heap after importing the bridge (its modules: live memory), and what config.load() and
   creating the Link (its buffers), the HTTP client and the Updater take;
2. the bytes allocated by the whole cycle (what an ESP32 collects as garbage as it goes);
3. the bytes allocated per chunk while streaming: the median growth between two progress lines
   (one line per 4 KB chunk; the lines that also send a progress report to the server are the max);
4. gc.peak(): the largest gc.mem_alloc() of the cycle, modules and garbage included.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from esp32_twin import VirtualEsp32

ROOT = Path(__file__).resolve().parents[1]
KB = 1024


def bench(fw_dir: Path, tmp: Path) -> None:
    from esp32_twin.twin_peer import TwinPeer
    from fota_lab.devices import boot_twin
    from fota_lab.fakes import FakeServer
    from fota_lab.heap_probe import measure_cycle
    from fota_lab.images import restamp
    from stm32_fota.esp32 import deploy

    image = restamp((fw_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=256 * KB)
    board = boot_twin(fw_dir)
    try:
        with FakeServer(image, "1.1.0", "B") as srv, \
                VirtualEsp32(TwinPeer(board), board=board, fs_dir=tmp / "fs") as esp:
            deploy(esp.port, None, {"server": srv.url, "wifi_ssid": "lab", "wifi_password": "pw"},
                   build_dir=tmp / "mpy")
            h = measure_cycle(esp.port)
    finally:
        board.close()
    if not h.result.startswith("fota: result confirmed"):
        raise SystemExit(f"bench_bridge_mem: the cycle did not complete: {h.result}")
    chunks = len(h.marks)
    steps = h.per_chunk
    print(f"update {len(image) // KB} KB A -> B: {h.result}")
    print(f"bridge imported: {h.modules} bytes in use after a collection ({h.modules / KB:.1f} KB)")
    print(f"config, Link, Http, Updater created: {h.objects} bytes")
    print(f"allocated by the cycle: {h.cycle} bytes ({h.cycle / KB:.1f} KB), "
          f"{h.cycle / chunks:.0f} bytes per chunk on average over {chunks} chunks")
    print(f"allocated per chunk while streaming: median {h.per_chunk_median:.0f} bytes "
          f"(min {min(steps)}, max {max(steps)}: a chunk that also sends a progress report)")
    print(f"allocated while streaming: {h.marks[-1] - h.marks[0]} bytes over {len(steps)} chunks")
    print(f"peak gc.mem_alloc(): {h.peak} bytes ({h.peak / KB:.1f} KB; modules and garbage included)")


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
