"""The size table printed by ``invoke build`` and ``invoke size``: used and free per region.

    >>> print(format_size_table(reports))   # doctest: +SKIP
    target       memory        used      limit       free  used
    bootloader   flash      9.6 KiB  128.0 KiB  118.4 KiB  7.5%
    ...

Flash "used" of a slot image counts what lands in the slot: the image padded to IMAGE_ALIGN plus
the trailer; its limit is the smaller of the slot and MAX_IMAGE_SIZE (256 KB), since an application
image must fit either slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fota_formats.spec import LAYOUT

from .elfcheck import TARGETS, ElfReport, check_elf
from .errors import BuildError


@dataclass(frozen=True)
class SizeRow:
    target: str
    memory: str
    used: int
    limit: int

    @property
    def free(self) -> int:
        return self.limit - self.used

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0


def size_rows(reports: Iterable[ElfReport]) -> list[SizeRow]:
    rows = []
    for r in reports:
        name = r.target.name
        rows.append(SizeRow(name, f"flash ({r.target.region_name})", r.flash_used, r.flash_limit))
        rows.append(SizeRow(name, "sram", r.sram_used, LAYOUT.sram_size))
        if r.ccm_used:
            rows.append(SizeRow(name, "ccm", r.ccm_used, LAYOUT.ccm_size))
    return rows


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def format_size_table(reports: Iterable[ElfReport]) -> str:
    rows = size_rows(reports)
    header = ("target", "memory", "used", "limit", "free", "used")
    cells = [header] + [(r.target, r.memory, _kib(r.used), _kib(r.limit), _kib(r.free), f"{r.percent:.1f}%")
                        for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for c in cells:
        left = [c[i].ljust(widths[i]) for i in range(2)]
        right = [c[i].rjust(widths[i]) for i in range(2, len(header))]
        lines.append("  ".join(left + right).rstrip())
    return "\n".join(lines)


def report_build_dir(build_dir: str | Path) -> list[ElfReport]:
    """Check every ELF of a previous build (bootloader, slots, variants) and return their usage."""
    d = Path(build_dir)
    names = {p.stem for p in d.glob("*.elf")} if d.is_dir() else set()
    if not {"bootloader", "slot-a", "slot-b"} <= names:
        raise BuildError(f"Failed to report sizes: no complete build in {d} (run `invoke build` first)")
    reports = []
    for name in sorted(names, key=lambda n: (n != "bootloader", n)):
        base = "-".join(name.split("-")[:2]) if name.startswith("slot-") else name
        target = TARGETS.get(base)
        if target is None:
            continue
        if name != base:
            target = target.variant(name[len(base) + 1:])
        reports.append(check_elf(d / f"{name}.elf", target))
    return reports
