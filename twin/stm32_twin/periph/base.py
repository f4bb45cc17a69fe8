"""Base class of the memory-mapped peripheral models.

Each model gets what it works with in its constructor (the fault reporter always; the virtual
time, the interrupt controller, the clock tree, other blocks as it needs them) and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..faults import Faults


class Peripheral:
    """One register block. Subclasses implement ``read(off)`` and ``write(off, value, mask)``.

    ``off`` is the word-aligned register offset. Writes narrower than 32 bits arrive with ``value``
    already shifted into place and ``mask`` covering the written bytes; the helper ``merge`` gives
    the usual read-modify-write result. ``clock`` names the RCC enable bit the block needs, e.g.
    ("AHB1ENR", 3): in strict mode an access while it is clear is reported (on the chip the access
    would read 0 and write nothing).
    """

    name = "?"
    base = 0
    size = 0x400
    clock: tuple[str, int] | None = None
    # Registers whose value changes with time alone: repeated reads are not a busy-wait.
    time_variant: frozenset[int] = frozenset()
    # Timers (by name) whose expiry can change what a busy-wait on this block reads; "deadline"
    # when only the outside world changes it (between two runs). See RunControl.idle_skip.
    wakers: frozenset[str] = frozenset()

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.reset()

    def reset(self) -> None:
        """System reset: registers to their reset values."""

    def reset_line(self) -> None:
        """The block's reset bit in an RCC reset register was set. Default: ``reset``."""
        self.reset()

    def power_off(self) -> None:
        """Power loss: also clears what survives a system reset (backup domain). Default: reset."""
        self.reset()

    def read(self, off: int) -> int:
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        self.unmodeled(off, "write")

    @staticmethod
    def merge(old: int, value: int, mask: int) -> int:
        return (old & ~mask) | (value & mask)

    def unmodeled(self, off: int, access: str) -> int:
        self.faults.unmodeled_access(self.base + off, access, f"{self.name} register at offset 0x{off:03X}")
        return 0


class SimpleRegs(Peripheral):
    """A block of plain read/write registers: {offset: (reset value, writable mask)}."""

    regs: ClassVar[dict[int, tuple[int, int]]] = {}

    def reset(self) -> None:
        self.r = {off: rv for off, (rv, _) in self.regs.items()}

    def read(self, off: int) -> int:
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off not in self.r:
            self.unmodeled(off, "write")
            return
        wmask = self.regs[off][1] & mask
        self.r[off] = self.merge(self.r[off], value, wmask)
