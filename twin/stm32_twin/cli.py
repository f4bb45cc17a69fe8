"""`invoke sim` and the `stm32-twin` command: boot the built binaries (or a flash file) on the twin
and print LED changes and UART lines with their virtual time.

    stm32-twin --build-dir build --run-ms 3000
    stm32-twin --flash twin-flash.bin --slot-b build/slot-b.bin --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .board import Stm32Twin
from .chip import REVISIONS
from .errors import TwinError, TwinFault
from .events import PS_PER_S, Event
from .freerun import free_run

SHOWN = ("led", "uart", "reset", "fault", "power", "warning")


@dataclass
class SimOptions:
    build_dir: str = "build"
    flash: str | None = None          # flash file, kept between runs
    # Images to program (default: the build's, for a new flash): .hex or .elf files at their own
    # addresses, .bin files where the .hex or .elf beside them says, or PATH@ADDRESS.
    bootloader: str | None = None
    slot_a: str | None = None
    slot_b: str | None = None
    run_ms: float = 3000.0
    realtime: bool = False            # advance with the wall clock instead of as fast as possible
    json: bool = False
    pins: bool = False                # also print every pin change
    temperature: float = 25.0
    timing: str = "typical"
    strict: bool = True
    # Board and part (Stm32Twin's parameters): no 8 MHz crystal, VDDA in volts, silicon revision.
    no_hse: bool = False
    vdda: float = 3.0
    revision: str = "2"
    hardware_watchdog: bool = False   # option byte WDG_SW = 0: the IWDG runs from reset
    lsi_hz: int = 32_000              # the part's LSI (17-47 kHz), which times the IWDG
    floating_nss: bool = False        # nothing on the SPI bus: NSS and SCK float (no ESP32)


def _program(board: Stm32Twin, opts: SimOptions, fresh: bool) -> list[str]:
    explicit = {"bootloader": opts.bootloader, "slot_a": opts.slot_a, "slot_b": opts.slot_b}
    loaded: list[str] = []
    if fresh and not any(explicit.values()):
        build = Path(opts.build_dir)
        loaded += board.load_build(build, slot_b=False)
        return loaded
    for image in explicit.values():
        if image:
            path, address = _image_arg(image)
            board.load_image(path, address)
            loaded.append(image)
    return loaded


def _image_arg(image: str) -> tuple[str, int | None]:
    """'build/slot-b.bin' -> (path, None); 'x.bin@0x08060000' -> (path, 0x08060000)."""
    path, at, address = image.rpartition("@")
    if at:
        try:
            return path, int(address, 0)
        except ValueError:
            pass
    return image, None


def run_sim(opts: SimOptions, out: Callable[[str], None] = print) -> int:
    """Run the simulation; returns the exit status (0 ok, 1 when the firmware faulted)."""
    fresh = opts.flash is None or not Path(opts.flash).exists()
    if opts.revision not in REVISIONS:
        raise TwinError(f"unknown silicon revision {opts.revision!r}: one of {', '.join(REVISIONS)}")
    board = Stm32Twin(opts.flash, strict=opts.strict, flash_timing=opts.timing,
                      temperature_c=opts.temperature, hse_hz=0 if opts.no_hse else 8_000_000, vdda=opts.vdda,
                      revision=REVISIONS[opts.revision], hardware_watchdog=opts.hardware_watchdog,
                      lsi_hz=opts.lsi_hz, floating=("NSS", "SCK") if opts.floating_nss else ())
    kinds = (*SHOWN, "pin") if opts.pins else SHOWN

    def show(ev: Event) -> None:
        if ev.kind in kinds:
            out(json.dumps(ev.to_json()) if opts.json else str(ev))

    try:
        loaded = _program(board, opts, fresh)
        if not opts.json:
            out(f"sim: flash {'file ' + opts.flash if opts.flash else '(in memory)'}"
                f"{'; programmed ' + ', '.join(loaded) if loaded else ''}")
        board.listeners.append(show)
        board.power_on()
        wall = time.perf_counter()
        status = 0
        try:
            if opts.realtime:
                free_run(board, opts.run_ms / 1000)
            else:
                board.run(ms=opts.run_ms)
        except TwinFault:
            status = 1
        except KeyboardInterrupt:
            pass
        host_s = time.perf_counter() - wall
        summary = {"virtual_s": board.now_ps / PS_PER_S, "host_s": round(host_s, 3),
                   "leds": board.leds, "uart_lines": len(board.uart_lines),
                   "flash_operations": board.flash_op_count, "fault": board.fault}
        if opts.json:
            out(json.dumps({"kind": "summary", "data": summary}))
        else:
            on = ", ".join(c for c, v in board.leds.items() if v) or "none"
            out(f"sim: {summary['virtual_s']:.3f} s virtual in {host_s:.2f} s host; LEDs on: {on}; "
                f"{len(board.uart_lines)} UART lines; {board.flash_op_count} flash operations"
                + (f"; FAULT: {board.fault}" if board.fault else ""))
        return status
    finally:
        board.close()


def parse_args(argv: list[str] | None = None) -> SimOptions:
    p = argparse.ArgumentParser(prog="stm32-twin", description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default="build",
                   help="where bootloader.bin and slot-a.bin are (default build)")
    p.add_argument("--flash",
                   help="flash file kept between runs (created erased, then programmed from the build)")
    where = " (.hex/.elf: at its addresses; .bin: where its .hex/.elf says, or PATH@ADDRESS)"
    p.add_argument("--bootloader", help="program this bootloader image" + where)
    p.add_argument("--slot-a", help="program this slot A image" + where)
    p.add_argument("--slot-b", help="program this slot B image" + where)
    p.add_argument("--run-ms", type=float, default=3000.0, help="virtual time to run (default 3000)")
    p.add_argument("--realtime", action="store_true", help="advance in step with the wall clock")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    p.add_argument("--pins", action="store_true", help="also print pin changes")
    p.add_argument("--temperature", type=float, default=25.0, help="die temperature in C (default 25)")
    p.add_argument("--timing", choices=("typical", "maximum"), default="typical", help="flash timings")
    p.add_argument("--no-hse", action="store_true", help="no 8 MHz crystal: the clock falls back to the HSI")
    p.add_argument("--vdda", type=float, default=3.0, help="VDDA in volts (default 3.0, a Discovery board)")
    p.add_argument("--revision", choices=tuple(REVISIONS), default="2",
                   help="silicon revision (DBGMCU_IDCODE REV_ID; A has no prefetch)")
    p.add_argument("--hardware-watchdog", action="store_true",
                   help="option byte WDG_SW = 0: the watchdog runs from reset")
    p.add_argument("--lsi-hz", type=int, default=32_000, help="LSI frequency, 17000-47000 (default 32000)")
    p.add_argument("--floating-nss", action="store_true",
                   help="no ESP32 on the SPI bus: NSS and SCK float and pick up noise")
    p.add_argument("--no-strict", action="store_true", help="unmodeled accesses read 0 instead of stopping")
    a = p.parse_args(argv)
    return SimOptions(build_dir=a.build_dir, flash=a.flash, bootloader=a.bootloader, slot_a=a.slot_a,
                      slot_b=a.slot_b, run_ms=a.run_ms, realtime=a.realtime, json=a.json, pins=a.pins,
                      temperature=a.temperature, timing=a.timing, strict=not a.no_strict,
                      no_hse=a.no_hse, vdda=a.vdda, revision=a.revision,
                      hardware_watchdog=a.hardware_watchdog, lsi_hz=a.lsi_hz, floating_nss=a.floating_nss)


def main(argv: list[str] | None = None) -> int:
    try:
        return run_sim(parse_args(argv))
    except TwinError as e:
        print(f"stm32-twin: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
