"""Cortex-M reset, exception entry and return, which Unicorn leaves to the twin (ARMv7-M ARM
B1.5.5-8).

Entry pushes the basic frame (R0-R3, R12, LR, return address, xPSR), or the extended frame with
S0-S15 and FPSCR when CONTROL.FPCA is set (the firmware uses the FPU), aligns the frame to 8 bytes
(xPSR bit 9 records it), loads EXC_RETURN into LR and jumps to the vector read through VTOR.
Return reverses it. Only the main stack is supported: thread mode on the process stack is reported.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from unicorn import Uc
from unicorn import arm_const as A

from .faults import Halt
from .regs import RegBank

if TYPE_CHECKING:
    from .core import RunControl
    from .erratum import StoreBeforeReturn
    from .faults import Faults
    from .flash import FlashInterface
    from .memory import Memory
    from .periph.scs import Nvic, Scs

BASIC_REGS = [A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2, A.UC_ARM_REG_R3, A.UC_ARM_REG_R12,
              A.UC_ARM_REG_LR, A.UC_ARM_REG_PC, A.UC_ARM_REG_XPSR]
FP_REGS = [getattr(A, f"UC_ARM_REG_S{i}") for i in range(16)] + [A.UC_ARM_REG_FPSCR]
CONTROL_SPSEL, CONTROL_FPCA = 2, 4
XPSR_T = 1 << 24
XPSR_ALIGN = 1 << 9
EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP = 0xFFFF_FFF1, 0xFFFF_FFF9, 0xFFFF_FFFD
EXC_RETURN_NOFP = 1 << 4
BASIC_FRAME = struct.Struct("<8I")
FP_FRAME = struct.Struct("<26I")


def reset_registers(uc: Uc, sp: int, pc: int) -> None:
    """The core after a reset: general, FPU and special registers cleared, Thumb state, MSP and PC
    from the first two words of the vector table (ARMv7-M ARM B1.5.5)."""
    regs = [(getattr(A, f"UC_ARM_REG_R{i}"), 0) for i in range(13)]
    regs += [(getattr(A, f"UC_ARM_REG_S{i}"), 0) for i in range(32)]
    regs += [(A.UC_ARM_REG_FPSCR, 0), (A.UC_ARM_REG_PRIMASK, 0), (A.UC_ARM_REG_BASEPRI, 0),
             (A.UC_ARM_REG_FAULTMASK, 0), (A.UC_ARM_REG_XPSR, XPSR_T), (A.UC_ARM_REG_CONTROL, 0)]
    uc.reg_write_batch(regs)
    uc.reg_write_batch([(A.UC_ARM_REG_MSP, sp), (A.UC_ARM_REG_SP, sp), (A.UC_ARM_REG_LR, 0xFFFF_FFFF),
                        (A.UC_ARM_REG_PC, pc | 1)])


class ExceptionUnit:
    """Exception entry and return, with register banks prepared once per CPU."""

    def __init__(self, uc: Uc, nvic: Nvic, scs: Scs, memory: Memory, flash: FlashInterface,
                 control: RunControl, faults: Faults, erratum: StoreBeforeReturn) -> None:
        self.uc = uc
        self.erratum = erratum
        self.nvic = nvic
        self.scs = scs
        self.memory = memory
        self.flash = flash
        self.control = control
        self.faults = faults
        self.ctl_sp = RegBank(uc, [A.UC_ARM_REG_CONTROL, A.UC_ARM_REG_SP])
        self.basic = RegBank(uc, BASIC_REGS)
        self.fp = RegBank(uc, FP_REGS)
        self.enter_regs = RegBank(uc, [A.UC_ARM_REG_SP, A.UC_ARM_REG_LR, A.UC_ARM_REG_XPSR,
                                       A.UC_ARM_REG_CONTROL, A.UC_ARM_REG_PC])
        self.return_regs = RegBank(uc, [A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2, A.UC_ARM_REG_R3,
                                        A.UC_ARM_REG_R12, A.UC_ARM_REG_LR, A.UC_ARM_REG_SP,
                                        A.UC_ARM_REG_XPSR, A.UC_ARM_REG_CONTROL, A.UC_ARM_REG_PC])

    def enter(self, exc: int) -> None:
        nvic = self.nvic
        control, sp = self.ctl_sp.read()
        handler_mode = bool(nvic.active)
        if not handler_mode and control & CONTROL_SPSEL:
            self.faults.unmodeled_access(sp, "write",
                                         "exception entry from thread mode on the process stack (PSP)")
            return
        fp = bool(control & CONTROL_FPCA)
        words = self.basic.read()
        words[7] |= XPSR_T
        size = 0x20
        if fp:
            words += [*self.fp.read(), 0]
            size = 0x68
        frame = sp - size
        if frame & 4:
            frame -= 4
            words[7] |= XPSR_ALIGN
        self._check_stack(frame, size)
        self.uc.mem_write(frame, (FP_FRAME if fp else BASIC_FRAME).pack(*words))
        exc_return = EXC_RETURN_HANDLER if handler_mode else EXC_RETURN_THREAD_MSP
        if fp:
            exc_return &= ~EXC_RETURN_NOFP
        vector = self._vector(exc)
        self.erratum.entered(vector)
        nvic.enter(exc)
        # PC with bit 0 set: Unicorn takes bit 0 of a PC write as the Thumb state.
        self.enter_regs.write([frame, exc_return, XPSR_T | exc, control & ~CONTROL_FPCA, vector | 1])

    def leave(self, pc: int) -> None:
        """Called from the interrupt hook: Unicorn reports a branch to EXC_RETURN as interrupt 8
        with the PC at the EXC_RETURN value with bit 0 cleared."""
        exc_return = pc | 1
        if exc_return & 4:
            self.faults.unmodeled_access(pc, "read", "exception return to the process stack (PSP)")
            return
        self.nvic.leave()
        fp = not exc_return & EXC_RETURN_NOFP
        control, sp = self.ctl_sp.read()
        frame = FP_FRAME if fp else BASIC_FRAME
        self._check_stack(sp, frame.size)
        words = frame.unpack(self.uc.mem_read(sp, frame.size))
        xpsr = words[7]
        new_sp = sp + frame.size + (4 if xpsr & XPSR_ALIGN else 0)
        control = (control | CONTROL_FPCA) if fp else (control & ~CONTROL_FPCA)
        if fp:
            self.fp.write(words[8:25])
        self.return_regs.write([words[0], words[1], words[2], words[3], words[4], words[5], new_sp,
                                (xpsr & ~XPSR_ALIGN) | XPSR_T, control, words[6] | 1])

    def _vector(self, exc: int) -> int:
        addr = self.scs.vtor + 4 * exc
        op = self.flash.op
        if op and self.memory.in_flash(addr):
            self.control.stall_until(op.end_ps)  # a vector fetch from flash waits for the operation
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    def _check_stack(self, address: int, n: int) -> None:
        if not self.memory.in_ram(address, n):
            self.faults.fail(f"exception frame at 0x{address:08X} (+{n}) is outside SRAM and CCM: "
                             "stack pointer corrupt?")
            raise Halt
