"""What the twin does when the firmware leaves the modeled chip, or crashes it.

In strict mode (the default) anything the twin does not model stops the run with a message naming
the address, the access width, the PC and the function; otherwise it is a 'warning' event and the
access reads 0. A bus error is a fault in strict mode and a HardFault otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import Uc, UcError
from unicorn import arm_const as A

from .periph.scs import HARDFAULT

if TYPE_CHECKING:
    from .core import RunControl
    from .events import EventLog
    from .periph.scs import Nvic
    from .symbols import Symbols


class Halt(Exception):
    """Unwinds a model callback after the CPU stopped with a fault."""


class Faults:
    def __init__(self, strict: bool, log: EventLog, control: RunControl, uc: Uc, symbols: Symbols,
                 nvic: Nvic) -> None:
        self.strict = strict
        self.log = log
        self.control = control
        self.uc = uc
        self.symbols = symbols
        self.nvic = nvic
        self.fault: str | None = None             # the message of the fault that stopped the CPU
        self.last_access: tuple[int, int] = (0, 0)  # address and width of the register access served

    def fail(self, message: str) -> None:
        """Stop the CPU with a fault (strict mode violations, crashes)."""
        if self.fault is None:
            self.fault = message
            self.log.emit("fault", message)
        self.control.request_stop("fault")

    def warn(self, message: str) -> None:
        self.log.emit("warning", message)

    def where(self, message: str) -> str:
        """``message`` with the PC and the function it is in."""
        try:
            pc = int(self.uc.reg_read(A.UC_ARM_REG_PC))
        except UcError:
            return message
        sym = self.symbols.lookup(pc)
        return f"{message} (PC 0x{pc:08X}{' in ' + sym if sym else ''})"

    def strict_violation(self, address: int, message: str) -> None:
        if self.strict:
            self.fail(self.where(message))
        else:
            self.warn(self.where(message))

    def unmodeled_access(self, address: int, access: str, what: str) -> None:
        size = self.last_access[1] if self.last_access[0] == address else 4
        self.strict_violation(address, f"unmodeled {what}: {access} of {size} byte(s) at 0x{address:08X}")

    def bus_fault(self, address: int, message: str) -> None:
        if self.strict:
            self.fail(self.where(f"bus error at 0x{address:08X}: {message}"))
        else:
            self.warn(self.where(f"bus error at 0x{address:08X}: {message} (HardFault)"))
            self.nvic.pend(HARDFAULT)
