"""Cortex-M exception entry and return, which Unicorn leaves to the twin (ARMv7-M ARM B1.5.6-8).

Entry pushes the basic frame (R0-R3, R12, LR, return address, xPSR), or the extended frame with
S0-S15 and FPSCR when CONTROL.FPCA is set (the firmware uses the FPU), aligns the frame to 8 bytes
(xPSR bit 9 records it), loads EXC_RETURN into LR and jumps to the vector read through VTOR.
Return reverses it. Only the main stack is supported: thread mode on the process stack is reported.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from unicorn import arm_const as A

if TYPE_CHECKING:
    from .board import Stm32Twin

BASIC_REGS = [A.UC_ARM_REG_R0, A.UC_ARM_REG_R1, A.UC_ARM_REG_R2, A.UC_ARM_REG_R3, A.UC_ARM_REG_R12,
              A.UC_ARM_REG_LR, A.UC_ARM_REG_PC, A.UC_ARM_REG_XPSR]
FP_REGS = [getattr(A, f"UC_ARM_REG_S{i}") for i in range(16)] + [A.UC_ARM_REG_FPSCR]
CONTROL_SPSEL, CONTROL_FPCA = 2, 4
XPSR_T = 1 << 24
XPSR_ALIGN = 1 << 9
EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP = 0xFFFF_FFF1, 0xFFFF_FFF9, 0xFFFF_FFFD
EXC_RETURN_NOFP = 1 << 4


def exception_entry(board: Stm32Twin, exc: int) -> None:
    uc = board.uc
    control, sp = uc.reg_read_batch([A.UC_ARM_REG_CONTROL, A.UC_ARM_REG_SP])
    handler_mode = bool(board.nvic.active)
    if not handler_mode and control & CONTROL_SPSEL:
        board.unmodeled_access(sp, "write", "exception entry from thread mode on the process stack (PSP)")
        return
    fp = bool(control & CONTROL_FPCA)
    values = list(uc.reg_read_batch(BASIC_REGS))
    values[7] = values[7] | XPSR_T
    words = list(values)
    size = 0x20
    if fp:
        words += [*uc.reg_read_batch(FP_REGS), 0]
        size = 0x68
    frame = sp - size
    if frame & 4:
        frame -= 4
        words[7] |= XPSR_ALIGN
    board.stack_write(frame, struct.pack(f"<{len(words)}I", *(w & 0xFFFF_FFFF for w in words)))
    exc_return = EXC_RETURN_HANDLER if handler_mode else EXC_RETURN_THREAD_MSP
    if fp:
        exc_return &= ~EXC_RETURN_NOFP
    vector = board.read_vector(exc)
    board.nvic.enter(exc)
    uc.reg_write_batch([
        (A.UC_ARM_REG_SP, frame),
        (A.UC_ARM_REG_LR, exc_return),
        (A.UC_ARM_REG_XPSR, XPSR_T | exc),
        (A.UC_ARM_REG_CONTROL, control & ~CONTROL_FPCA),
        (A.UC_ARM_REG_PC, vector | 1),  # bit 0 keeps the Thumb state in Unicorn
    ])


def exception_return(board: Stm32Twin, pc: int) -> None:
    """Called from the interrupt hook: Unicorn reports a branch to EXC_RETURN as interrupt 8 with
    the PC at the EXC_RETURN value with bit 0 cleared."""
    uc = board.uc
    exc_return = pc | 1
    if exc_return & 4:
        board.unmodeled_access(pc, "read", "exception return to the process stack (PSP)")
        return
    board.nvic.leave()
    fp = not exc_return & EXC_RETURN_NOFP
    sp = uc.reg_read(A.UC_ARM_REG_SP)
    size = 0x68 if fp else 0x20
    words = struct.unpack(f"<{size // 4}I", board.stack_read(sp, size))
    xpsr = words[7]
    new_sp = sp + size + (4 if xpsr & XPSR_ALIGN else 0)
    control = uc.reg_read(A.UC_ARM_REG_CONTROL)
    control = (control | CONTROL_FPCA) if fp else (control & ~CONTROL_FPCA)
    if fp:
        uc.reg_write_batch(list(zip(FP_REGS, words[8:25], strict=True)))
    uc.reg_write_batch([
        (A.UC_ARM_REG_R0, words[0]), (A.UC_ARM_REG_R1, words[1]), (A.UC_ARM_REG_R2, words[2]),
        (A.UC_ARM_REG_R3, words[3]), (A.UC_ARM_REG_R12, words[4]), (A.UC_ARM_REG_LR, words[5]),
        (A.UC_ARM_REG_SP, new_sp),
        (A.UC_ARM_REG_XPSR, (xpsr & ~XPSR_ALIGN) | XPSR_T),
        (A.UC_ARM_REG_CONTROL, control),
        (A.UC_ARM_REG_PC, words[6] | 1),
    ])
