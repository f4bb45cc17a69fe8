"""Benchmark of the STM32 twin: prints figures, asserts nothing.

    .venv/bin/python bench/bench_twin.py                    # builds the firmware into a temp dir
    .venv/bin/python bench/bench_twin.py --build-dir build
    .venv/bin/python bench/bench_twin.py --json twin.json   # also the figures as JSON (fota_lab.benchjson)

Figures, each for the real bootloader + slot-A application:
1. 10 s of virtual time of the application's main loop (LED, temperature, link polling, WFI
   between SysTick interrupts): host seconds, and guest instructions per host second;
2. the same main loop kept busy by the SPI master (an INFO request every 200 us of virtual time,
   the link's DMA, EXTI interrupt and agent code running): instructions per host second;
3. the bootloader's start-up (clock, SHA-256 of the slots, journal scan) up to the jump;
4. the ceiling: Unicorn on a register-only loop in the twin's 10 000-instruction slices.

Guest instruction counts are exact: the twin is deterministic, so each scenario runs once timed
(no hooks) and once more with a per-instruction counting hook; the two runs must produce the same
events, which the script checks. Target: >= 50 million instructions per host second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fota_lab.benchjson import Figure, write
from fota_lab.master import Master, TwinPort
from stm32_fota.build import build
from stm32_twin import Event, Stm32Twin
from unicorn import UC_HOOK_CODE

Scenario = Callable[[Stm32Twin], None]


def fresh(build_dir: Path) -> Stm32Twin:
    board = Stm32Twin()
    board.load_build(build_dir, slot_b=False)
    return board


def measure(name: str, build_dir: Path, prepare: Scenario, scenario: Scenario) -> tuple[float, int]:
    """Host seconds of ``scenario`` and its exact guest instruction count."""
    timed = fresh(build_dir)
    prepare(timed)
    t0 = time.perf_counter()
    scenario(timed)
    host_s = time.perf_counter() - t0
    counted = fresh(build_dir)
    n = [0]

    def count(uc: object, address: int, size: int, user: object) -> None:
        n[0] += 1

    counted.uc.hook_add(UC_HOOK_CODE, count)  # before any code is translated
    prepare(counted)
    n[0] = 0
    scenario(counted)
    same = [_key(e) for e in timed.events] == [_key(e) for e in counted.events]
    if not same:
        print(f"{name}: WARNING: the counting run diverged from the timed run", file=sys.stderr)
    return host_s, n[0]


def _key(e: Event) -> tuple[int, str, str]:
    return (e.time_ps, e.kind, str(e.data))


def boot_app(board: Stm32Twin) -> None:
    board.power_on()
    board.run_until("uart", timeout_ms=1000, match="app: start")
    board.run(ms=50)


def boot_to_jump(board: Stm32Twin) -> None:
    board.power_on()
    board.run_until("uart", timeout_ms=1000, match="boot: jump")


def info_load(board: Stm32Twin) -> None:
    master = Master(TwinPort(board))
    end = board.now_ps + 1_000_000_000_000
    while board.now_ps < end:
        master.info()
        board.run(us=200)


def ceiling() -> tuple[float, int]:
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn.arm_const import UC_ARM_REG_PC

    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(0x0800_0000, 0x1000)
    uc.mem_write(0x0800_0000, bytes.fromhex("013000bf00bffbe7"))  # adds r0,#1; nop; nop; b .-6
    pc, n, slices = 0x0800_0000, 10_000, 3000
    t0 = time.perf_counter()
    for _ in range(slices):
        uc.emu_start(pc | 1, 0xFFFF_FFFF, 0, n)
        pc = uc.reg_read(UC_ARM_REG_PC)
    return time.perf_counter() - t0, n * slices


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", help="use this firmware build instead of building v1.0.0 into a temp dir")
    p.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = p.parse_args()
    figures: list[Figure] = []

    def speed(name: str, host_s: float, n: int, with_host_time: bool = True) -> float:
        rate = n / host_s / 1e6
        figures.append(Figure(group="twin speed", name=name, value=round(rate, 1), unit="M instructions/s",
                              host_s=round(host_s, 2) if with_host_time else None))
        return rate

    with tempfile.TemporaryDirectory() as tmp:
        build_dir = Path(args.build_dir) if args.build_dir else build("1.0.0", 0, Path(tmp) / "fw").build_dir
        host_s, n = measure("idle", build_dir, boot_app, lambda b: b.run(ms=10_000))
        rate = speed("app main loop, 10 s virtual", host_s, n)
        print(f"1. app main loop, 10 s virtual: {host_s:.2f} s host ({10 / host_s:.0f}x real time), "
              f"{n / 1e6:.2f} M guest instructions, {rate:.1f} M instructions/s")
        host_s, n = measure("busy", build_dir, boot_app, info_load)
        rate = speed("app main loop serving INFO every 200 us, 1 s virtual", host_s, n)
        print(f"2. app main loop serving INFO every 200 us, 1 s virtual: {host_s:.2f} s host, "
              f"{n / 1e6:.2f} M guest instructions, {rate:.1f} M instructions/s")
        host_s, n = measure("boot", build_dir, lambda b: None, boot_to_jump)
        rate = speed("bootloader start-up to the jump", host_s, n)
        print(f"3. bootloader start-up to the jump: {host_s * 1000:.0f} ms host, {n / 1e6:.2f} M guest "
              f"instructions, {rate:.1f} M instructions/s")
        host_s, n = ceiling()
        rate = speed("Unicorn ceiling, register-only loop in 10 000-instruction slices", host_s, n,
                     with_host_time=False)
        print(f"4. Unicorn ceiling, register-only loop in 10 000-instruction slices: "
              f"{rate:.0f} M instructions/s")
    if args.json:
        write(args.json, "twin", figures)
    return 0

if __name__ == "__main__":
    sys.exit(main())
