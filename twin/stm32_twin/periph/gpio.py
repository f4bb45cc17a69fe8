"""GPIO ports A-E (RM0090 section 8.4), EXTI (section 12.3) and SYSCFG (section 9.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from .base import Peripheral, SimpleRegs

if TYPE_CHECKING:
    from ..faults import Faults
    from ..power import Supply
    from .scs import Nvic

MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24)
# Reset values that differ from 0: the debug pins (RM0090 section 8.4, register descriptions).
RESET = {
    "A": {MODER: 0xA800_0000, OSPEEDR: 0x0C00_0000, PUPDR: 0x6400_0000},
    "B": {MODER: 0x0000_0280, OSPEEDR: 0x0000_00C0, PUPDR: 0x0000_0100},
}
MODE_INPUT, MODE_OUTPUT, MODE_AF, MODE_ANALOG = 0, 1, 2, 3


class GpioPort(Peripheral):
    """One GPIO port. Pin level: output pins drive ODR; others read the external level, else
    the pull resistor (pull-up 1, pull-down 0), else, floating, 0 or, for the pins in
    ``floating`` (nothing connected, an unpowered chip on the other end), ``noise``: an input with
    neither driver nor pull picks up whatever couples into it (RM0090 8.3.1 leaves its level
    undefined), which the board alternates. Unpowered, only the external level. Level changes go
    to ``on_change(port letter, pin, level)``."""

    def __init__(self, faults: Faults, letter: str, supply: Supply,
                 on_change: Callable[[str, int, int], None]) -> None:
        self.supply = supply
        self.on_change = on_change
        self.letter = letter
        self.name = f"GPIO{letter}"
        index = "ABCDE".index(letter)
        self.base = 0x4002_0000 + 0x400 * index
        self.clock = ("AHB1ENR", index)
        self.external: dict[int, int] = {}  # pin -> level driven from outside
        self.floating: set[int] = set()      # pins that pick up noise when nothing drives or pulls them
        self.noise = 0
        self.wakers = frozenset({"deadline"})
        super().__init__(faults)

    def reset(self) -> None:
        self.r = {MODER: 0, OTYPER: 0, OSPEEDR: 0, PUPDR: 0, ODR: 0, LCKR: 0, AFRL: 0, AFRH: 0}
        self.r.update(RESET.get(self.letter, {}))
        if not hasattr(self, "_levels"):
            self._levels = self._compute_levels()
        # Otherwise the old levels stay until update() is called: the pins that a reset
        # releases then change with an event, as a probe would see.

    def reset_line(self) -> None:
        self.reset()
        self.update()

    def mode(self, pin: int) -> int:
        return (self.r[MODER] >> (2 * pin)) & 3

    def af(self, pin: int) -> int:
        reg = AFRL if pin < 8 else AFRH
        return (self.r[reg] >> (4 * (pin % 8))) & 0xF

    def level(self, pin: int) -> int:
        return (self._levels >> pin) & 1

    def _pin_level(self, pin: int) -> int:
        if not self.supply.on:
            return self.external.get(pin, 0)
        if self.mode(pin) == MODE_OUTPUT:
            out = (self.r[ODR] >> pin) & 1
            if self.r[OTYPER] >> pin & 1 and out:  # open drain released: external or pull
                return self.external.get(pin, 1 if self._pull(pin) != 2 else 0)
            return out
        if pin in self.external:
            return self.external[pin]
        pull = self._pull(pin)
        if pull == 0 and pin in self.floating and self.mode(pin) != MODE_ANALOG:
            return self.noise
        return 1 if pull == 1 else 0

    def _pull(self, pin: int) -> int:
        return (self.r[PUPDR] >> (2 * pin)) & 3

    def _compute_levels(self) -> int:
        v = 0
        for pin in range(16):
            v |= self._pin_level(pin) << pin
        return v

    def update(self) -> None:
        """Recompute pin levels; report changes and feed EXTI edges."""
        new = self._compute_levels()
        changed = new ^ self._levels
        if not changed:
            return
        self._levels = new
        for pin in range(16):
            if changed >> pin & 1:
                self.on_change(self.letter, pin, (new >> pin) & 1)

    def set_external(self, pin: int, level: int | None) -> None:
        if level is None:
            self.external.pop(pin, None)
        else:
            self.external[pin] = 1 if level else 0
        self.update()

    def read(self, off: int) -> int:
        if off == IDR:
            return self._levels
        if off == BSRR:
            return 0
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == BSRR:
            # Set bits win over reset bits (RM0090 section 8.4.7).
            v = value & mask
            odr = (self.r[ODR] & ~(v >> 16)) | (v & 0xFFFF)
            self.r[ODR] = odr & 0xFFFF
        elif off == IDR:
            return
        elif off in self.r:
            self.r[off] = self.merge(self.r[off], value, mask)
            if off == ODR:
                self.r[ODR] &= 0xFFFF
        else:
            self.unmodeled(off, "write")
            return
        self.update()


EXTI_IRQ = {0: 6, 1: 7, 2: 8, 3: 9, 4: 10}  # lines 5-9: IRQ 23, lines 10-15: IRQ 40


def exti_irq(line: int) -> int:
    if line in EXTI_IRQ:
        return EXTI_IRQ[line]
    return 23 if line < 10 else 40


# (IRQ, mask of the EXTI lines that share it)
EXTI_GROUPS = tuple((irq, sum(1 << ln for ln in range(16) if exti_irq(ln) == irq))
                    for irq in sorted({exti_irq(ln) for ln in range(16)}))


class Exti(Peripheral):
    """EXTI lines 0-15 from the GPIO pins (RM0090 section 12.3); lines 16-22 are not modeled."""

    name = "EXTI"
    base = 0x4001_3C00
    wakers = frozenset({"deadline"})
    IMR, EMR, RTSR, FTSR, SWIER, PR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14

    def __init__(self, faults: Faults, nvic: Nvic) -> None:
        self.nvic = nvic
        super().__init__(faults)

    def reset(self) -> None:
        self.r = dict.fromkeys((self.IMR, self.EMR, self.RTSR, self.FTSR, self.SWIER), 0)
        self.pr = 0

    def edge(self, line: int, rising: bool) -> None:
        sel = self.RTSR if rising else self.FTSR
        if self.r[sel] >> line & 1:
            self.pr |= 1 << line
            self._irqs()

    def _irqs(self) -> None:
        active = self.pr & self.r[self.IMR]
        for irq, lines in EXTI_GROUPS:
            self.nvic.set_level(irq, bool(active & lines))

    def read(self, off: int) -> int:
        if off == self.PR:
            return self.pr
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        v = value & mask
        if off == self.PR:
            self.pr &= ~v  # write 1 to clear (RM0090 section 12.3.6)
        elif off == self.SWIER:
            self.pr |= v & 0x7F_FFFF
        elif off in self.r:
            self.r[off] = self.merge(self.r[off], value, mask) & 0x7F_FFFF
        else:
            self.unmodeled(off, "write")
            return
        self._irqs()


class Syscfg(SimpleRegs):
    """SYSCFG (RM0090 section 9.2): EXTICR1-4 select the port of each EXTI line."""

    name = "SYSCFG"
    base = 0x4001_3800
    clock = ("APB2ENR", 14)
    regs: ClassVar[dict[int, tuple[int, int]]] = {
        0x00: (0, 0x3), 0x04: (0, 1 << 23), 0x08: (0, 0xFFFF), 0x0C: (0, 0xFFFF),
        0x10: (0, 0xFFFF), 0x14: (0, 0xFFFF), 0x20: (0, 1)}

    def port_of_line(self, line: int) -> str:
        reg = 0x08 + 4 * (line // 4)
        return "ABCDEFGHI"[(self.r[reg] >> (4 * (line % 4))) & 0xF]

    def write(self, off: int, value: int, mask: int) -> None:
        if off == 0x00 and value & mask & 3:
            self.faults.unmodeled_access(self.base, "write", "SYSCFG_MEMRMP memory remap (only flash at 0)")
            return
        super().write(off, value, mask)

    def read(self, off: int) -> int:
        if off == 0x20:
            return self.r[0x20] | (self.r[0x20] << 8)  # CMPCR READY follows CMP_PD
        return super().read(off)
