"""Helpers of the twin tests (a unique module name: every test directory has a conftest)."""

from __future__ import annotations

from typing import Any

from stm32_twin import Stm32Twin


def values(board: Stm32Twin) -> dict[str, int]:
    """The "<name> 0x<hex>" lines a program logged, as a dict."""
    out = {}
    for line in board.uart_lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("0x"):
            out[parts[0]] = int(parts[1], 16)
    return out


def layout_mismatches(layout: Any) -> list[str]:
    """Where a product flash layout (a ``Layout`` of the product's spec loader) disagrees with the
    chip the twin models (stm32_twin.chip, from RM0090): one message per disagreement, naming the
    sector, region or memory. The product decides where its images go; the chip decides where the
    sectors are, and only this comparison ties the two."""
    from stm32_twin import chip

    out = []
    if (layout.flash_base, layout.flash_size) != (chip.FLASH_BASE, chip.FLASH_SIZE):
        out.append(f"flash: layout 0x{layout.flash_base:08X} + 0x{layout.flash_size:X}, "
                   f"chip 0x{chip.FLASH_BASE:08X} + 0x{chip.FLASH_SIZE:X}")
    mine = {s.number: s for s in layout.sectors}
    for s in chip.SECTORS:
        m = mine.pop(s.number, None)
        if m is None:
            out.append(f"sector {s.number}: missing from the layout (chip 0x{s.base:08X} + 0x{s.size:X})")
        elif (m.base, m.size) != (s.base, s.size):
            out.append(f"sector {s.number}: layout 0x{m.base:08X} + 0x{m.size:X}, "
                       f"chip 0x{s.base:08X} + 0x{s.size:X} (RM0090 Table 5)")
    out += [f"sector {n}: the chip has no such sector" for n in sorted(mine)]
    for r in layout.regions.values():
        first, last = r.first_sector, r.last_sector
        if not 0 <= first <= last < len(chip.SECTORS):
            out.append(f"region {r.name}: sectors {first}-{last} are not sectors of the chip")
            continue
        base, end = chip.SECTORS[first].base, chip.SECTORS[last].end
        if (r.base, r.base + r.size) != (base, end):
            out.append(f"region {r.name}: layout 0x{r.base:08X}-0x{r.base + r.size:08X}, "
                       f"chip sectors {first}-{last} are 0x{base:08X}-0x{end:08X}")
    for name, have, want in (("SRAM", (layout.sram_base, layout.sram_size), (chip.SRAM_BASE, chip.SRAM_SIZE)),
                             ("CCM", (layout.ccm_base, layout.ccm_size), (chip.CCM_BASE, chip.CCM_SIZE))):
        if have != want:
            out.append(f"{name}: layout 0x{have[0]:08X} + 0x{have[1]:X}, "
                       f"chip 0x{want[0]:08X} + 0x{want[1]:X}")
    return out
