"""Power and reset: the supply, power cuts, NRST, and the system reset with its causes.

- A system reset (AIRCR SYSRESETREQ, IWDG expiry, NRST) keeps flash, SRAM and the backup domain,
  sets the reset flags in RCC_CSR (RM0090 7.3.21; every internal reset also drives NRST, 7.1.2)
  and interrupts a running flash operation; the CPU starts from the vector table at 0.
- Power-on starts with SRAM, CCM and the backup domain cleared (POR, PIN and BOR flags).
- A power cut interrupts the flash operation in progress (flash.py leaves what a cut leaves) and
  the chip stays off until ``power_on``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from unicorn import Uc

from . import cpu
from .errors import TwinError
from .events import PS_PER_MS, PS_PER_US, EventLog, Timer, VirtualTime
from .periph.rcc import RESET_FLAGS

if TYPE_CHECKING:
    from .bus import Bus
    from .core import RunControl
    from .faults import Faults
    from .flash import FlashInterface, FlashOp
    from .memory import Memory
    from .periph.base import Peripheral
    from .periph.gpio import GpioPort
    from .periph.rcc import Rcc


class Supply:
    """The supply rail and the NRST pin, as the models that depend on them read them."""

    def __init__(self) -> None:
        self.on = False
        self.nrst_low = False


class Power:
    def __init__(self, uc: Uc, time: VirtualTime, log: EventLog, control: RunControl, faults: Faults,
                 supply: Supply, memory: Memory, bus: Bus, flash: FlashInterface, rcc: Rcc,
                 peripherals: Sequence[Peripheral], ports: Sequence[GpioPort]) -> None:
        self.uc = uc
        self.time = time
        self.log = log
        self.control = control
        self.faults = faults
        self.supply = supply
        self.memory = memory
        self.bus = bus
        self.flash = flash
        self.rcc = rcc
        self.peripherals = list(peripherals)
        self.ports = list(ports)
        self.cut_at_op: int | None = None
        self._cut_timer: Timer | None = None
        self.after_reset: list[Callable[[], None]] = []
        flash.op_started.append(self._flash_op_started)

    # -- supply ---------------------------------------------------------------------------------
    def power_on(self) -> None:
        if self.supply.on:
            return
        self.memory.clear_ram()
        for p in self.peripherals:
            p.power_off()
        self.supply.on = True
        self.log.emit("power", "on")
        self.system_reset("power")

    def power_off(self) -> None:
        if not self.supply.on:
            return
        self.flash.interrupt()
        self.supply.on = False
        self.time.clear()
        for g in self.ports:  # unpowered, the pins float low: outputs drop, LEDs go off
            g.reset()
            g.update()
        self._cut_timer = None
        self.log.emit("power", "off")
        self.control.request_stop("power")

    def power_cycle(self, off_ms: float) -> None:
        self.power_off()
        self.time.advance(self.time.now_ps + int(off_ms * PS_PER_MS))
        self.power_on()

    # -- power cuts ------------------------------------------------------------------------------
    def cut_at_ps(self, t_ps: int) -> None:
        if self._cut_timer:
            self._cut_timer.cancel()
        self._cut_timer = self.time.at(max(t_ps, self.time.now_ps), self.power_off, "power cut")

    def cut_at_us(self, t_us: float) -> None:
        self.cut_at_ps(int(t_us * PS_PER_US))

    def cut_at_flash_op(self, n: int) -> None:
        if n < 1:
            raise TwinError(f"Failed to arm the power cut: flash operation numbers start at 1, not {n}")
        self.cut_at_op = n

    def _flash_op_started(self, op: FlashOp) -> None:
        if self.cut_at_op == op.number:
            frac = random.Random(op.number).uniform(0.05, 0.95)
            self.cut_at_ps(op.start_ps + max(1, int((op.end_ps - op.start_ps) * frac)))

    # -- reset -------------------------------------------------------------------------------------
    def set_nrst(self, low: bool) -> None:
        """NRST held low: peripherals and pins in their reset state, the CPU waits for the release
        to fetch its reset vector."""
        supply = self.supply
        if low and not supply.nrst_low:
            supply.nrst_low = True
            if supply.on:
                self.system_reset("pin")
            self.control.request_stop("nrst")
        elif not low and supply.nrst_low:
            supply.nrst_low = False

    def system_reset(self, cause: str) -> None:
        self.flash.interrupt()
        self.rcc.csr_flags |= RESET_FLAGS[cause]
        keep_timers = [t for t in [self._cut_timer] if t is not None and t.pending]
        self.time.clear()
        for t in keep_timers:
            self._cut_timer = self.time.at(t.time_ps, self.power_off, "power cut")
        for p in self.peripherals:
            p.reset()
        for g in self.ports:
            g.update()
        self.faults.fault = None
        self.control.sleeping = False
        self.control.reset_request = None
        self.bus.forget()
        self.memory.flash_busy(False)
        sp = int.from_bytes(self.memory.flash_bytes(0, 4), "little")
        pc = int.from_bytes(self.memory.flash_bytes(4, 4), "little")
        cpu.reset_registers(self.uc, sp, pc)
        self.log.emit("reset", {"cause": cause})
        for hook in self.after_reset:  # the outside world's timers, which a chip reset does not stop
            hook()
