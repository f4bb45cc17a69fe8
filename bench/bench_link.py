"""Benchmark of the SPI update link on the STM32 twin.

    .venv/bin/python bench/bench_link.py                 # builds v1.0.0/v1.1.0 in a temp dir
    .venv/bin/python bench/bench_link.py --build-dir build --sizes 64 256
    .venv/bin/python bench/bench_link.py --json link.json   # also the figures as JSON (fota_lab.benchjson)

Prints, in the twin's virtual time (one instruction per cycle at 168 MHz, DS8626 typical flash
timings, SPI at 10.5 MHz), with the reference master (fota_lab.master) driving the real firmware:

1. for images of 64, 128 and 256 KB written into slot B (whose sectors hold old data, so they must
   be erased): the time from BEGIN to the end of ACTIVATE, the flash lower bound for the same
   image (erase of every sector it touches + 16 us per 32-bit word) and their ratio (target
   <= 1.01), the split per phase, and the SPI bytes clocked per image byte (target <= 1.03);
2. the boot time from reset to the application's first instruction: the very first boot of a
   fresh device (the bootloader appends the first-boot record), a confirmed image (the second boot,
   which appends nothing) and the first trial boot after ACTIVATE (the bootloader validates both
   slots and appends a journal record on a trial boot); and the confirmed boot of a slot A image
   padded to 252 KB (target <= 5 ms for any size: the bootloader checks a confirmed image by the
   CRC unit, not by its SHA-256); and the first trial boot of a full 256 KB signed image (target
   <= 150 ms: SHA-256 of the image and Ed25519 verification before it first runs).

The images are the real v1.1.0 slot-B application padded with pseudo-random bytes to the size
(0xFF padding would be skipped by the flash layer and flatter the figures).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fota_formats.image import HDR_SIZE, validate_image
from fota_formats.spec import LAYOUT
from fota_lab.benchjson import Figure, write
from fota_lab.images import restamp
from fota_lab.master import Master, TwinPort
from stm32_fota.build import build
from stm32_twin.board import Stm32Twin
from stm32_twin.flash import ERASE_MS, PROGRAM_US
from unicorn import UC_HOOK_CODE

KB = 1024
PSIZE_X32 = 2
UPDATE = "update (BEGIN..ACTIVATE, virtual time)"
BOOT = "boot time (reset to application)"


def padded_image(image: bytes, file_size: int) -> bytes:
    """The image grown to at most ``file_size`` bytes (TLVs included) with pseudo-random filler,
    re-signed with the lab key (FOTA_SIGNING_KEY: the key the firmware was built with)."""
    return restamp(image, validate_image(image).version, size=file_size)


def lower_bound_ms(slot: int, size: int) -> tuple[float, int]:
    """Erase of the sectors [0, size) of the slot touches + 16 us per word (typical figures)."""
    region = LAYOUT.slot_region(slot)
    sectors = [s for s in LAYOUT.sectors_of(region) if s.base < region.base + size]
    erase = sum(ERASE_MS[s.size][PSIZE_X32][0] for s in sectors)
    return erase + (size + 3) // 4 * PROGRAM_US["typical"] / 1000, len(sectors)


def _booted(build_dir: Path) -> Stm32Twin:
    twin = Stm32Twin()
    twin.load_build(build_dir, slot_b=False)
    # Old contents in slot B, as after an earlier update: BEGIN has to erase.
    region = LAYOUT.region("slot_b")
    twin.write_flash(region.base - LAYOUT.flash_base, bytes(region.size))
    twin.power_on()
    if not twin.wait_pin("READY", 1, 5000):
        raise SystemExit("bench: the application did not come up:\n" + "\n".join(twin.uart_lines))
    return twin


@dataclass
class UpdateFigures:
    size: int
    sectors: int
    measured_ms: float
    bound_ms: float
    phases: dict[str, float]
    wire_per_byte: float

    @property
    def ratio(self) -> float:
        return self.measured_ms / self.bound_ms


def bench_update(build_dir: Path, image: bytes) -> UpdateFigures:
    twin = _booted(build_dir)
    r = Master(TwinPort(twin)).update(image, reset=False)
    if r.outcome != "activated":
        raise SystemExit(f"bench: update ended {r.outcome}: {r.reason}")
    bound, sectors = lower_bound_ms(1, len(image))
    twin.close()
    return UpdateFigures(len(image), sectors, r.begin_to_activate_ms, bound, dict(r.phases_ms),
                         r.wire_per_payload)


def _first_instruction_ms(twin: Stm32Twin, slot: int, start: Callable[[], None]) -> float:
    """Virtual time from start() to the first instruction of the application in ``slot``.
    Resolution: one Unicorn slice of the twin (10 000 instructions, 60 us)."""
    vectors = LAYOUT.slot_region(slot).base + HDR_SIZE     # after the image header
    entry = int.from_bytes(twin.flash_bytes(vectors + 4, 4), "little") & ~1
    hit: list[int] = []
    hook = twin.uc.hook_add(UC_HOOK_CODE, lambda *_: hit.append(twin.now_ps) if not hit else None,
                            begin=entry, end=entry)
    t0 = twin.now_ps
    start()
    twin.run_until(lambda _ev: bool(hit), 6000)
    while not hit and twin.now_ms < t0 / 1e9 + 6000:
        twin.run(ms=1)
    twin.uc.hook_del(hook)
    if not hit:
        raise SystemExit(f"bench: the application in slot {slot} never started")
    return (hit[0] - t0) / 1e9


@dataclass
class BootFigures:
    first_ms: float      # fresh device: the first-boot record is appended
    confirmed_ms: float  # the second boot: the journal says confirmed, nothing appended
    trial_ms: float      # the first trial boot after ACTIVATE


def _app_up(twin: Stm32Twin) -> None:
    """READY, and the log lines so far sent (they drain from a RAM ring after the jump)."""
    if not twin.wait_pin("READY", 1, 5000):
        raise SystemExit("bench: the application did not come up")
    for _ in range(500):
        if twin.usart2.sr & twin.usart2.SR_TC:
            return
        twin.run(ms=1)
    raise SystemExit("bench: USART2 still sending 500 ms after READY")


def bench_boot(build_dir: Path, image_b: bytes) -> BootFigures:
    twin = Stm32Twin()
    twin.load_build(build_dir, slot_b=False)
    first = _first_instruction_ms(twin, 0, twin.power_on)
    _app_up(twin)
    if not any("first boot: journal seq" in line for line in twin.uart_lines):
        raise SystemExit("bench: the first boot did not write the first-boot record")
    mark = len(twin.uart_lines)
    confirmed = _first_instruction_ms(twin, 0, lambda: twin.reset_pin())
    _app_up(twin)
    second = twin.uart_lines[mark:]
    if not any(line.startswith("boot: jump slot A") and "(confirmed)" in line for line in second):
        raise SystemExit("bench: the second boot was not a confirmed boot:\n" + "\n".join(second))
    m = Master(TwinPort(twin))
    r = m.update(image_b, reset=False)
    if r.outcome != "activated":
        raise SystemExit(f"bench: update ended {r.outcome}")
    trial = _first_instruction_ms(twin, 1, lambda: twin.reset_pin())
    twin.close()
    return BootFigures(first, confirmed, trial)


def bench_boot_big(build_dir: Path, size: int) -> float:
    """Confirmed boot (the second boot) of slot A's image padded to ``size`` bytes."""
    twin = Stm32Twin()
    twin.load_build(build_dir, slot_b=False)
    region = LAYOUT.region("slot_a")
    image = padded_image((build_dir / "slot-a.bin").read_bytes(), size)
    twin.write_flash(region.base - LAYOUT.flash_base, image)
    _first_instruction_ms(twin, 0, twin.power_on)
    _app_up(twin)
    ms = _first_instruction_ms(twin, 0, lambda: twin.reset_pin())
    _app_up(twin)
    if not any(line.startswith("boot: jump slot A") and "(confirmed)" in line for line in twin.uart_lines):
        raise SystemExit("bench: the padded image did not boot confirmed")
    twin.close()
    return ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, help="use the v1.0.0 build there (slot A runs it); "
                    "the v1.1.0 image is built beside it in a temporary directory")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="image sizes in KB")
    ap.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = ap.parse_args(argv)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-link-") as tmp:
        base = args.build_dir or Path(tmp) / "v1.0.0"
        if args.build_dir is None:
            build("1.0.0", 0, base)
        new = Path(tmp) / "v1.1.0"
        build("1.1.0", 0, new)
        app = (new / "slot-b.bin").read_bytes()

        print("Update BEGIN..ACTIVATE into slot B (virtual time, typical flash timings, SPI 10.5 MHz)")
        print(f"{'image':>8} {'sectors':>7} {'measured':>10} {'bound':>10} {'ratio':>6} "
              f"{'begin':>8} {'write':>9} {'verify':>7} {'activ.':>6} {'wire/B':>7}")
        worst = 0.0
        for kb in args.sizes:
            f = bench_update(base, padded_image(app, kb * KB))
            worst = max(worst, f.ratio)
            p = f.phases
            print(f"{kb:>5} KB {f.sectors:>7} {f.measured_ms:>8.1f}ms {f.bound_ms:>8.1f}ms {f.ratio:>6.3f} "
                  f"{p['begin']:>6.1f}ms {p['write']:>7.1f}ms {p['verify']:>5.1f}ms {p['activate']:>4.1f}ms "
                  f"{f.wire_per_byte:>7.4f}")
            figures += [
                Figure(group=UPDATE, name=f"{kb} KB into slot B ({f.sectors} sectors)",
                       value=round(f.measured_ms / 1000, 3), unit="s",
                       notes=f"lower bound {f.bound_ms / 1000:.3f} s, ratio {f.ratio:.3f} (target <= 1.01)"),
                Figure(group="wire efficiency", name=f"{kb} KB image", value=round(f.wire_per_byte, 4),
                       unit="SPI bytes per image byte", notes="target <= 1.03"),
            ]
        b = bench_boot(base, app)
        print(f"worst ratio {worst:.3f} (target <= 1.01)")
        print(f"boot, reset to the application's first instruction (+-0.06 ms): confirmed image "
              f"{b.confirmed_ms:.1f} ms, first trial boot {b.trial_ms:.1f} ms, first boot of a fresh "
              f"device (first-boot record) {b.first_ms:.1f} ms")
        big_kb = 252
        big_ms = bench_boot_big(base, big_kb * KB)
        print(f"confirmed boot of a {big_kb} KB image: {big_ms:.1f} ms (target <= 5 ms)")
        full = bench_boot(base, padded_image(app, 256 * KB))
        print(f"first trial boot of a 256 KB image (SHA-256 and Ed25519 signature of slot B, both slots "
              f"checked): {full.trial_ms:.1f} ms (target <= 150 ms)")
        figures.append(Figure(group=BOOT, name="first trial boot of a 256 KB image",
                              value=round(full.trial_ms, 1), unit="ms",
                              notes="+-0.06 ms, target <= 150 ms (full check: SHA-256 + Ed25519)"))
        figures += [Figure(group=BOOT, name=name, value=round(ms, 1), unit="ms", notes="+-0.06 ms")
                    for name, ms in (("confirmed image", b.confirmed_ms), ("first trial boot", b.trial_ms),
                                     ("first boot of a fresh device", b.first_ms))]
        figures.append(Figure(group=BOOT, name=f"confirmed image of {big_kb} KB", value=round(big_ms, 1),
                              unit="ms", notes="+-0.06 ms, target <= 5 ms (CRC unit over the image)"))
    if args.json:
        write(args.json, "link", figures)
    return 0

if __name__ == "__main__":
    sys.exit(main())
