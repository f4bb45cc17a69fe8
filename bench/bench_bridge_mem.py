"""Heap use of the ESP32 bridge during one 256 KB update, on the virtual ESP32 (docs/bridge.md,
Memory): how many bytes the bridge allocates per cycle and per chunk.

    .venv/bin/python bench/bench_bridge_mem.py                     # builds the firmware in a temp dir
    .venv/bin/python bench/bench_bridge_mem.py --fw-build DIR      # an existing build (slot-b.bin ...)
    .venv/bin/python bench/bench_bridge_mem.py --json mem.json     # also the figures as JSON

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

Twice: over HTTP, then over HTTPS (the server with a throwaway certificate, its CA deployed with the
bridge; those lines start with "https: "). The HTTPS figures are the Python heap only: on an
ESP32, mbedTLS takes its buffers (about 40-50 KB during a handshake) from the IDF heap, outside
gc.mem_alloc() (docs/bridge.md, Memory).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from esp32_twin import VirtualEsp32

ROOT = Path(__file__).resolve().parents[1]
KB = 1024
GROUP = "bridge heap, one update cycle (virtual ESP32)"
FIGURES: list[dict[str, object]] = []     # what --json writes, in the form of fota_lab.benchjson.Figure


def bench(fw_dir: Path, tmp: Path, tls: bool) -> None:
    from esp32_twin.twin_peer import TwinPeer
    from fota_lab.devices import boot_twin
    from fota_lab.fakes import FakeServer
    from fota_lab.heap_probe import measure_cycle
    from fota_lab.images import restamp
    from fota_lab.labtls import lab_certs
    from stm32_fota.esp32 import deploy

    image = restamp((fw_dir / "slot-b.bin").read_bytes(), (1, 1, 0), size=256 * KB)
    pki = lab_certs(tmp / "pki") if tls else None
    board = boot_twin(fw_dir)
    try:
        with FakeServer(image, "1.1.0", "B", tls=(pki.server_cert, pki.server_key) if pki else None) as srv, \
                VirtualEsp32(TwinPeer(board), board=board, fs_dir=tmp / "fs") as esp:
            deploy(esp.port, None, {"server": srv.url, "wifi_ssid": "lab", "wifi_password": "pw"},
                   build_dir=tmp / "mpy", ca_files=[pki.ca_cert] if pki else [])
            h = measure_cycle(esp.port)
    finally:
        board.close()
    if not h.result.startswith("fota: result confirmed"):
        raise SystemExit(f"bench_bridge_mem: the cycle did not complete: {h.result}")
    chunks = len(h.marks)
    steps = h.per_chunk
    p = "https: " if tls else ""
    print(f"{p}update {len(image) // KB} KB A -> B: {h.result}")
    print(f"{p}bridge imported: {h.modules} bytes in use after a collection ({h.modules / KB:.1f} KB)")
    print(f"{p}config, Link, Http, Updater created: {h.objects} bytes")
    print(f"{p}allocated by the cycle: {h.cycle} bytes ({h.cycle / KB:.1f} KB), "
          f"{h.cycle / chunks:.0f} bytes per chunk on average over {chunks} chunks")
    print(f"{p}allocated per chunk while streaming: median {h.per_chunk_median:.0f} bytes "
          f"(min {min(steps)}, max {max(steps)}: a chunk that also sends a progress report)")
    print(f"{p}allocated while streaming: {h.marks[-1] - h.marks[0]} bytes over {len(steps)} chunks")
    print(f"{p}peak gc.mem_alloc(): {h.peak} bytes ({h.peak / KB:.1f} KB; modules and garbage included)")
    over = " over HTTPS" if tls else ""
    for name, value, notes in (
        (f"bridge modules imported (live){over}", h.modules, f"{len(image) // KB} KB image, {h.result}"),
        (f"config, Link, Http, Updater{over}", h.objects, ""),
        (f"allocated by the whole cycle{over}", h.cycle,
         f"{h.cycle / chunks:.0f} B per chunk on average over {chunks} chunks"),
        (f"allocated per chunk while streaming (median){over}", round(h.per_chunk_median),
         f"min {min(steps)} B, max {max(steps)} B (a chunk that also sends a progress report)"),
        (f"peak gc.mem_alloc(){over}", h.peak, "modules and garbage included"),
    ):
        FIGURES.append({"group": GROUP, "name": name, "value": value, "unit": "B", "notes": notes})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fw-build", type=Path, default=None,
                   help="an existing firmware build directory (default: a build of the working tree)")
    p.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bridge-mem-") as tmp:
        fw_dir = a.fw_build
        if fw_dir is None:
            from stm32_fota.build import build
            fw_dir = build("1.0.0", 0, Path(tmp) / "fw").build_dir
        for tls in (False, True):
            bench(fw_dir, Path(tmp) / ("https" if tls else "http"), tls)
    if a.json:
        from fota_lab.benchjson import Figure, write

        write(a.json, "bridge-mem", [Figure.model_validate(f) for f in FIGURES])


if __name__ == "__main__":
    main()
