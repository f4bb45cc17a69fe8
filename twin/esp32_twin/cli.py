"""`python -m esp32_twin` and `invoke sim-esp32`: a virtual ESP32 on a pty, wired to the STM32 twin.

    python -m esp32_twin --flash stm32-flash.bin --build-dir build --server http://127.0.0.1:8080

Prints the pty path (use it with mpremote, `invoke deploy-esp32 --device`, `invoke update
--device`), the STM32's UART lines, LED changes and resets, and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esp32_twin.device import HEAP_BYTES, VirtualEsp32
from esp32_twin.errors import Esp32TwinError
from esp32_twin.netstack import WifiConfig
from esp32_twin.peer import FakePeer

SHOWN = ("led", "uart", "reset", "fault", "power")
DEFAULT_FS = ".fota/vesp32-fs"


@dataclass
class SimEsp32Options:
    flash: str | None = None          # the STM32 twin's flash file (kept between runs)
    build_dir: str = "build"          # programmed into a new (erased) flash file
    fs_dir: str = DEFAULT_FS          # the ESP32's filesystem (kept between runs)
    server: str | None = None         # checked for reachability, shown in the hints
    wifi_down: bool = False
    no_nrst_pullup: bool = False      # NRST without its pull-up: GPIO 4's pull-down holds it half-way
    no_twin: bool = False             # nothing on the SPI bus (a FakePeer): no build needed
    heap: int = HEAP_BYTES
    seconds: float | None = None      # stop after this long (tests, scripts); None: until Ctrl-C
    baud: int = 115200                # the console UART's speed, as a DevKit's; 0: unthrottled


def _check_server(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return f"server {url}: not an http:// URL, the bridge will refuse it"
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=2):
            return f"server {url}: reachable"
    except OSError as e:
        return f"server {url}: not reachable now ({e.strerror or e}); start it with `invoke serve`"


def _make_board(opts: SimEsp32Options, out: Callable[[str], None]) -> Any:
    from stm32_twin import Stm32Twin

    fresh = opts.flash is None or not Path(opts.flash).exists()
    board = Stm32Twin(opts.flash)
    if fresh:
        loaded = board.load_build(opts.build_dir, slot_b=False)
        out(f"sim-esp32: STM32 flash {opts.flash or '(in memory)'} programmed from {', '.join(loaded)}")
    else:
        out(f"sim-esp32: STM32 flash {opts.flash} (as left by the last run)")

    def show(ev: Any) -> None:
        if ev.kind in SHOWN:
            out(f"stm32 {ev}")

    board.listeners.append(show)
    board.power_on()
    return board


def run_sim_esp32(opts: SimEsp32Options, out: Callable[[str], None] = print) -> int:
    """Run until Ctrl-C (or opts.seconds); returns the exit status."""
    board = None
    if opts.no_twin:
        peer: Any = FakePeer()
    else:
        from esp32_twin.twin_peer import TwinPeer

        board = _make_board(opts, out)
        peer = TwinPeer(board)
    fs_dir = Path(opts.fs_dir)
    esp = VirtualEsp32(peer, board=board, fs_dir=fs_dir, wifi=WifiConfig(up=not opts.wifi_down),
                       heap_bytes=opts.heap, baud=opts.baud or None)
    esp.services.nrst_pullup = not opts.no_nrst_pullup
    try:
        esp.start()
        out(f"sim-esp32: virtual ESP32 on {esp.port} (MicroPython, {opts.heap // 1024} KB heap, "
            f"files in {fs_dir}; started in {esp.started_s:.2f} s)")
        if opts.server:
            out("sim-esp32: " + _check_server(opts.server))
        out(f"sim-esp32: try `mpremote connect {esp.port} repl`, or "
            f"`invoke deploy-esp32 --device {esp.port}{' --server ' + opts.server if opts.server else ''}`"
            f" then `invoke update --device {esp.port}`; Ctrl-C ends")
        end = None if opts.seconds is None else time.monotonic() + opts.seconds
        while end is None or time.monotonic() < end:
            if not esp.alive or esp.error:
                out(f"sim-esp32: Failed to keep the virtual ESP32 running: {esp.error or 'runner exited'}")
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        out("sim-esp32: stopped")
    finally:
        esp.stop()
        if board is not None:
            board.close()
    return 0


def parse_args(argv: list[str] | None = None) -> SimEsp32Options:
    p = argparse.ArgumentParser(prog="python -m esp32_twin", description=__doc__.split("\n")[0])
    p.add_argument("--flash", help="the STM32 twin's flash file, kept between runs (programmed from "
                                   "--build-dir when it does not exist yet)")
    p.add_argument("--build-dir", default="build", help="firmware build for a new flash file (default build)")
    p.add_argument("--fs", default=DEFAULT_FS,
                   help=f"the ESP32's files, kept between runs (default {DEFAULT_FS})")
    p.add_argument("--server", help="update server URL: checked and shown in the hints")
    p.add_argument("--wifi-down", action="store_true", help="no access point: Wi-Fi never connects")
    p.add_argument("--no-nrst-pullup", action="store_true",
                   help="NRST wired without its 10 kOhm pull-up: GPIO 4's reset pull-down holds it half-way")
    p.add_argument("--no-twin", action="store_true", help="nothing on the SPI bus (no firmware build needed)")
    p.add_argument("--heap", type=int, default=HEAP_BYTES,
                   help=f"MicroPython heap in bytes (default {HEAP_BYTES})")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    a = p.parse_args(argv)
    return SimEsp32Options(flash=a.flash, build_dir=a.build_dir, fs_dir=a.fs, server=a.server,
                           wifi_down=a.wifi_down, no_nrst_pullup=a.no_nrst_pullup, no_twin=a.no_twin,
                           heap=a.heap, seconds=a.seconds)


def main(argv: list[str] | None = None) -> int:
    from stm32_twin import TwinError

    try:
        return run_sim_esp32(parse_args(argv), out=lambda line: print(line, flush=True))
    except Esp32TwinError as e:
        print(f"sim-esp32: {e}", file=sys.stderr)
        return 2
    except TwinError as e:  # a bad build directory or flash file
        print(f"sim-esp32: {e}", file=sys.stderr)
        return 2
