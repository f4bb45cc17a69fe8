"""Heap figures of one update cycle on the virtual ESP32 (a test of tests/bridge and
bench/bench_bridge_mem.py share it).

The WebAssembly port does not collect garbage while a program runs (docs/virtual-esp32.md), so the
growth of gc.mem_alloc() between two points of one program is what the program allocated there.
`measure_cycle` imports the bridge, notes the heap after a collection (its modules), then runs the
cycle of `updater.update()` with a log function that notes gc.mem_alloc() at every progress line.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
from dataclasses import dataclass

from .errors import LabError

_IMPORT = "import config, net, fotalink, hw, updater"
_LIVE = "import gc, vgc\nprint('live', gc.mem_alloc(), vgc.HEAP_BYTES)"
_CYCLE = """\
import gc, config, net, fotalink, hw, updater
marks = [0] * 256
n = [0]
def log(line):
    print(line)
    if line.startswith("fota: progress") and n[0] < 256:
        marks[n[0]] = gc.mem_alloc()
        n[0] += 1
def connect():
    net.wifi_connect(cfg["wifi_ssid"], cfg["wifi_password"], cfg["wifi_retries"], cfg["wifi_timeout_ms"])
linked = gc.mem_alloc()
cfg = config.load()
http = net.Http(cfg["server"], cfg["token"], cfg["http_timeout_s"], cfg["ca_file"], cfg["ntp_host"])
link = fotalink.Link(hw.Port(cfg))
u = updater.Updater(link, http, cfg, log=log, connect=connect)
start = gc.mem_alloc()
gc.peak(True)
u.cycle()
end = gc.mem_alloc()
print("mem", linked, start, end, gc.peak(), " ".join(str(marks[i]) for i in range(n[0])))
"""


@dataclass
class CycleHeap:
    """Bytes, as gc.mem_alloc() counts them."""

    lines: list[str]        # what the cycle printed
    modules: int            # in use after importing the bridge and a collection
    objects: int            # allocated by config.load() and creating the Link (its buffers), Http, Updater
    cycle: int              # allocated by the whole cycle
    peak: int               # largest gc.mem_alloc() during the cycle (modules and garbage included)
    marks: list[int]        # gc.mem_alloc() at each progress line (one per chunk)
    heap_bytes: int         # the heap of the ESP32 the virtual one stands for (gc.mem_free() at boot)

    @property
    def result(self) -> str:
        return next((ln for ln in self.lines if ln.startswith("fota: result")), "no result line")

    @property
    def per_chunk(self) -> list[int]:
        """Bytes allocated between two progress lines: one chunk each."""
        return [b - a for a, b in itertools.pairwise(self.marks)]

    @property
    def per_chunk_median(self) -> float:
        return statistics.median(self.per_chunk)


def _mpremote(port: str, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        raise LabError(f"Failed to run mpremote {args[0]} on {port}: {r.stderr.strip()}")
    return r.stdout


def measure_cycle(port: str) -> CycleHeap:
    """One update cycle on the deployed bridge of the virtual ESP32 at `port`, with its heap figures."""
    _mpremote(port, "exec", _IMPORT)
    # Between two programs the port collects: what is left is the bridge's modules.
    modules, heap_bytes = map(int, _mpremote(port, "resume", "exec", _LIVE).split()[-2:])
    out = _mpremote(port, "resume", "exec", _CYCLE)
    lines = out.splitlines()
    mem = next((ln for ln in lines if ln.startswith("mem ")), None)
    if mem is None:
        raise LabError(f"Failed to measure the cycle: no heap figures in its output:\n{out[-2000:]}")
    linked, start, end, peak, *marks = map(int, mem.split()[1:])
    return CycleHeap(lines, modules, start - linked, end - start, peak, marks, heap_bytes)
