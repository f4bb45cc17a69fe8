"""How long an update's flash work takes at least, and how long the link took: the demo's
"link time" against its "lower bound" (docs/demo.md).

    >>> round(flash_lower_bound_s(40_000, 1), 3)      # one 128 KB sector of Slot B + 10,000 words
    1.16

The lower bound is the erase of every sector the image touches in its slot plus one word program per
32-bit word, with the STM32F407's typical figures (DS8626 section 6.3.12, x32 parallelism): the
figures the STM32 twin models, taken from the twin so that the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fota_formats.spec import LAYOUT

PS_PER_S = 10**12


@dataclass
class LinkTimes:
    """Twin virtual time of the last BEGIN frame and of the OK answer to ACTIVATE (picoseconds)."""

    begin_ps: int | None = None
    activated_ps: int | None = None
    image_size: int = 0
    slot: int = -1
    blank_sectors: frozenset[int] = frozenset()   # sectors of the target slot already erased at BEGIN

    @property
    def seconds(self) -> float | None:
        if self.begin_ps is None or self.activated_ps is None or self.activated_ps < self.begin_ps:
            return None
        return (self.activated_ps - self.begin_ps) / PS_PER_S


def touched_sectors(image_size: int, slot: int) -> list[int]:
    """Numbers of the sectors of ``slot`` that an image of ``image_size`` bytes occupies."""
    region = LAYOUT.slot_region(slot)
    return [s.number for s in LAYOUT.sectors_of(region) if s.base < region.base + image_size]


def blank_sectors(read: Callable[[int, int], bytes], image_size: int, slot: int) -> frozenset[int]:
    """The sectors an image of ``image_size`` bytes touches in ``slot`` that are erased already
    (every byte 0xFF); ``read(address, n)`` reads the flash. Empty for a slot that does not exist."""
    if slot not in (0, 1):
        return frozenset()
    out = set()
    for n in touched_sectors(image_size, slot):
        sector = LAYOUT.sectors[n]
        if read(sector.base, sector.size).count(0xFF) == sector.size:
            out.add(n)
    return frozenset(out)


def flash_lower_bound_s(image_size: int, slot: int, blank: frozenset[int] = frozenset()) -> float:
    """Erase of every sector the image touches in the slot + 16 us per 32-bit word (DS8626 typical,
    the figures the twin models). Sectors in ``blank`` were erased already: the update agent skips
    them, so they count no erase time."""
    from stm32_twin import ERASE_MS, PROGRAM_US  # the twin's own figures (loads the twin)

    typical_x32 = 2, 0                                  # ERASE_MS[size][psize][column]
    erase_ms = 0.0
    for n in touched_sectors(image_size, slot):
        if n not in blank:
            psize, column = typical_x32
            erase_ms += ERASE_MS[LAYOUT.sectors[n].size][psize][column]
    words = (image_size + 3) // 4
    return erase_ms / 1000.0 + words * PROGRAM_US["typical"] / 1e6
