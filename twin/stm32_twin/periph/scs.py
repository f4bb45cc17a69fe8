"""The Cortex-M4 system control space: SysTick, NVIC, SCB, FPU control (PM0214 chapter 4),
plus DWT CYCCNT and DBGMCU (RM0090 section 38.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import Uc
from unicorn import arm_const as A

from ..chip import DEV_ID
from ..events import PS_PER_S, Timer
from ..regs import RegBank
from .base import Peripheral

if TYPE_CHECKING:
    from ..core import RunControl
    from ..events import VirtualTime
    from ..faults import Faults
    from .rcc import Rcc

NUM_IRQ = 82  # STM32F407: IRQ 0..81 (RM0090 table 61)
# Exception numbers
RESET, NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT = 1, 2, 3, 4, 5, 6
SVCALL, PENDSV, SYSTICK = 11, 14, 15
IRQ0 = 16

# SysTick (PM0214 section 4.5)
ST_CTRL, ST_LOAD, ST_VAL, ST_CALIB = 0x010, 0x014, 0x018, 0x01C
ST_ENABLE, ST_TICKINT, ST_CLKSOURCE, ST_COUNTFLAG = 1, 2, 4, 1 << 16
# NVIC (PM0214 section 4.3)
ISER, ICER, ISPR, ICPR, IABR, IPR = 0x100, 0x180, 0x200, 0x280, 0x300, 0x400
# SCB (PM0214 section 4.4)
CPUID, ICSR, VTOR, AIRCR, SCR, CCR = 0xD00, 0xD04, 0xD08, 0xD0C, 0xD10, 0xD14
SHPR1, SHPR2, SHPR3, SHCSR, CFSR, HFSR, MMFAR, BFAR, AFSR = (
    0xD18, 0xD1C, 0xD20, 0xD24, 0xD28, 0xD2C, 0xD34, 0xD38, 0xD3C)
CPACR, DEMCR, STIR, FPCCR, FPCAR, FPDSCR = 0xD88, 0xDFC, 0xF00, 0xF34, 0xF38, 0xF3C
ICSR_PENDSTSET, ICSR_PENDSTCLR, ICSR_PENDSVSET, ICSR_PENDSVCLR = 1 << 26, 1 << 25, 1 << 28, 1 << 27
AIRCR_VECTKEY = 0x05FA
AIRCR_SYSRESETREQ = 1 << 2
PRIO_BITS_MASK = 0xF0  # STM32F4: 4 priority bits, the upper half of each byte


class SysTick:
    """The SysTick counter, computed from virtual time instead of ticking."""

    def __init__(self, time: VirtualTime, clocks: Rcc, nvic: Nvic) -> None:
        self.time = time
        self.clocks = clocks
        self.nvic = nvic
        self.timer: Timer | None = None
        self.reset()

    def reset(self) -> None:
        if getattr(self, "timer", None):
            self.timer.cancel()
        self.ctrl = 0
        self.load = 0
        self.countflag = 0
        self.anchor_ps = 0
        self.anchor_val = 0
        self.timer = None

    def hz(self) -> int:
        hclk = self.clocks.hclk_hz()
        return hclk if self.ctrl & ST_CLKSOURCE else hclk // 8

    def _elapsed_cycles(self) -> int:
        return (self.time.now_ps - self.anchor_ps) * self.hz() // PS_PER_S

    def val(self) -> int:
        if not self.ctrl & ST_ENABLE:
            return self.anchor_val
        c = self._elapsed_cycles()
        v0 = self.anchor_val
        if c < v0:
            return v0 - c
        phase = (c - v0) % (self.load + 1)
        return 0 if phase == 0 else self.load + 1 - phase

    def _reanchor(self, val: int | None = None) -> None:
        self.anchor_val = self.val() if val is None else val
        self.anchor_ps = self.time.now_ps
        self._schedule()

    def _schedule(self) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if not self.ctrl & ST_ENABLE:
            return
        v0 = self.anchor_val
        c = self._elapsed_cycles()
        if c < v0:
            cycles = v0
        elif self.load == 0:
            return  # a LOAD of 0 stops the counter at 0 (PM0214 section 4.5.2)
        else:
            k = (c - v0) // (self.load + 1) + 1
            cycles = v0 + k * (self.load + 1)
        hz = self.hz()
        t = self.anchor_ps + (cycles * PS_PER_S + hz - 1) // hz
        name = "systick irq" if self.ctrl & ST_TICKINT else "systick"
        self.timer = self.time.at(t, self._wrap, name)

    def _wrap(self) -> None:
        self.countflag = 1
        if self.ctrl & ST_TICKINT:
            self.nvic.pend(SYSTICK)
        self._schedule()

    def hclk_will_change(self) -> None:
        """Note the count reached at the old rate."""
        if self.ctrl & ST_ENABLE:
            self.anchor_val = self.val()
            self.anchor_ps = self.time.now_ps

    def hclk_changed(self) -> None:
        """HCLK changed: continue from the frozen count at the new rate."""
        self._schedule()

    def read(self, off: int) -> int:
        if off == ST_CTRL:
            v = self.ctrl | (self.countflag << 16)
            self.countflag = 0  # COUNTFLAG clears on read
            return v
        if off == ST_LOAD:
            return self.load
        if off == ST_VAL:
            return self.val()
        return 0x4000_0000 | (self.clocks.hclk_hz() // 8 // 1000 - 1)  # CALIB: NOREF, TENMS

    def write(self, off: int, value: int) -> None:
        if off == ST_CTRL:
            was = self.ctrl & ST_ENABLE
            cur = self.val()
            self.ctrl = value & 7
            if self.ctrl & ST_ENABLE and not was:
                self._reanchor(cur)
            elif not self.ctrl & ST_ENABLE:
                self.anchor_val = cur
                self._schedule()
            else:
                self._reanchor(cur)
        elif off == ST_LOAD:
            self.load = value & 0xFF_FFFF
            if self.ctrl & ST_ENABLE:
                self._reanchor()
        elif off == ST_VAL:
            self.countflag = 0  # any write clears VAL and COUNTFLAG
            self._reanchor(0)


class Nvic:
    """Pending/enabled/active state and priorities of all exceptions, level-sensitive IRQ lines.

    When an exception becomes pending, or a priority changes, while the CPU runs a slice, the slice
    ends if the exception can be taken now (PRIMASK and BASEPRI are read from the CPU)."""

    def __init__(self, uc: Uc, control: RunControl) -> None:
        self.control = control
        self._prio_regs = RegBank(uc, [A.UC_ARM_REG_PRIMASK, A.UC_ARM_REG_BASEPRI])
        self.reset()

    def reset(self) -> None:
        self.enabled = [False] * NUM_IRQ
        self.ipr = [0] * NUM_IRQ
        self.pending: set[int] = set()   # exception numbers
        self.active: list[int] = []      # stack of active exception numbers
        self.levels: set[int] = set()    # IRQs whose line is asserted
        self.shpr = [0] * 16             # system handler priorities by exception number
        self.prigroup = 0

    def pend(self, exc: int) -> None:
        self.pending.add(exc)
        self.recheck()

    def recheck(self) -> None:
        """An exception became pending or a priority changed: stop the slice when it can be taken."""
        control = self.control
        if control.in_emu and control.stop_reason is None and self.takeable() is not None:
            control.request_stop("irq")

    def takeable(self) -> int | None:
        """The pending exception the CPU takes now, under its PRIMASK and BASEPRI."""
        if not self.pending:
            return None
        primask, basepri = self._prio_regs.read()
        return self.best_pending(primask, basepri)

    def set_level(self, irq: int, level: bool) -> None:
        """An IRQ line as a peripheral drives it: a rising line makes the IRQ pending, and it
        pends again on exception return while still asserted (level-sensitive, PM0214 4.3.9)."""
        if level:
            if irq not in self.levels:
                self.levels.add(irq)
                if IRQ0 + irq not in self.active:
                    self.pend(IRQ0 + irq)
        else:
            self.levels.discard(irq)

    def priority(self, exc: int) -> int:
        if exc == RESET:
            return -3
        if exc == NMI:
            return -2
        if exc == HARDFAULT:
            return -1
        if exc >= IRQ0:
            return self.ipr[exc - IRQ0]
        return self.shpr[exc]

    def group(self, prio: int) -> int:
        if prio < 0:
            return prio
        # PRIGROUP: bits [prigroup:0] are sub-priority (PM0214 section 4.4.5)
        return prio & ~((2 << self.prigroup) - 1) & 0xFF if self.prigroup < 7 else 0

    def execution_priority(self, primask: int, basepri: int) -> int:
        prio = 256
        for exc in self.active:
            prio = min(prio, self.group(self.priority(exc)))
        if basepri & 0xFF:
            prio = min(prio, self.group(basepri & PRIO_BITS_MASK))
        if primask & 1:
            prio = min(prio, 0)
        return prio

    def is_enabled(self, exc: int) -> bool:
        if exc >= IRQ0:
            return self.enabled[exc - IRQ0]
        return True

    def best_pending(self, primask: int, basepri: int, ignore_mask: bool = False) -> int | None:
        """The pending exception to take now, if any (lowest priority value, then number)."""
        if not self.pending:
            return None
        limit = self.execution_priority(0 if ignore_mask else primask, 0 if ignore_mask else basepri)
        best = None
        best_key = None
        for exc in self.pending:
            if not self.is_enabled(exc):
                continue
            key = (self.group(self.priority(exc)), self.priority(exc), exc)
            if key[0] >= limit:
                continue
            if best_key is None or key < best_key:
                best, best_key = exc, key
        return best

    def enter(self, exc: int) -> None:
        self.pending.discard(exc)
        self.active.append(exc)

    def leave(self) -> int | None:
        exc = self.active.pop() if self.active else None
        if exc is not None and exc >= IRQ0 and exc - IRQ0 in self.levels:
            self.pending.add(exc)
        return exc


class Scs(Peripheral):
    """0xE000E000-0xE000EFFF: the SysTick, NVIC and SCB registers. SYSRESETREQ asks ``control`` for
    a software reset."""

    name = "SCS"
    base = 0xE000_E000
    wakers = frozenset({"systick", "systick irq"})
    size = 0x1000
    time_variant = frozenset({ST_VAL})

    def __init__(self, faults: Faults, nvic: Nvic, systick: SysTick, control: RunControl) -> None:
        self.nvic = nvic
        self.systick = systick
        self.control = control
        super().__init__(faults)

    def reset(self) -> None:
        self.systick.reset()
        self.nvic.reset()
        self.vtor = 0
        self.scr = 0
        self.ccr = 0x200
        self.cpacr = 0
        self.demcr = 0
        self.shcsr = 0
        self.fpccr = 0xC000_0000
        self.fpcar = 0
        self.fpdscr = 0
        self.cfsr = self.hfsr = 0

    def read(self, off: int) -> int:
        n = self.nvic
        if ST_CTRL <= off <= ST_CALIB:
            return self.systick.read(off)
        if off == 0x004:  # ICTR: 3 x 32 interrupt lines
            return 2
        if ISER <= off < ISER + 12 or ICER <= off < ICER + 12:
            return self._bits(off & 0x7F, lambda i: n.enabled[i])
        if ISPR <= off < ISPR + 12 or ICPR <= off < ICPR + 12:
            return self._bits(off & 0x7F, lambda i: IRQ0 + i in n.pending)
        if IABR <= off < IABR + 12:
            return self._bits(off & 0x7F, lambda i: IRQ0 + i in n.active)
        if IPR <= off < IPR + NUM_IRQ:
            i = off - IPR
            return sum(n.ipr[i + k] << (8 * k) for k in range(4) if i + k < NUM_IRQ)
        if off == CPUID:
            return 0x410F_C241  # Cortex-M4 r0p1
        if off == ICSR:
            active = n.active[-1] if n.active else 0
            pend = min(n.pending) if n.pending else 0
            return (active | (pend << 12) | (bool(n.pending) << 22)
                    | ((SYSTICK in n.pending) << 26) | ((PENDSV in n.pending) << 28))
        if off == VTOR:
            return self.vtor
        if off == AIRCR:
            return 0xFA05_0000 | (n.prigroup << 8)
        if off == SCR:
            return self.scr
        if off == CCR:
            return self.ccr
        if off in (SHPR1, SHPR2, SHPR3):
            e = 4 + (off - SHPR1)
            return sum(n.shpr[e + k] << (8 * k) for k in range(4))
        if off == SHCSR:
            return self.shcsr
        if off == CFSR:
            return self.cfsr
        if off == HFSR:
            return self.hfsr
        if off in (MMFAR, BFAR, AFSR):
            return 0
        if off == CPACR:
            return self.cpacr
        if off == DEMCR:
            return self.demcr
        if off == FPCCR:
            return self.fpccr
        if off == FPCAR:
            return self.fpcar
        if off == FPDSCR:
            return self.fpdscr
        return self.unmodeled(off, "read")

    def _bits(self, rel: int, pred) -> int:  # type: ignore[no-untyped-def]
        first = (rel & 0x1F) // 4 * 32
        return sum(1 << k for k in range(32) if first + k < NUM_IRQ and pred(first + k))

    def write(self, off: int, value: int, mask: int) -> None:
        n = self.nvic
        v = value & mask
        if ST_CTRL <= off <= ST_VAL:
            self.systick.write(off, v if mask == 0xFFFF_FFFF else self.merge(self.systick.read(off), value,
                                                                            mask))
            return
        if off == ST_CALIB:
            return
        for base, action in ((ISER, "en"), (ICER, "dis"), (ISPR, "pend"), (ICPR, "unpend")):
            if base <= off < base + 12:
                first = (off - base) * 8
                for k in range(32):
                    i = first + k
                    if not v >> k & 1 or i >= NUM_IRQ:
                        continue
                    if action == "en":
                        n.enabled[i] = True
                    elif action == "dis":
                        n.enabled[i] = False
                    elif action == "pend":
                        n.pending.add(IRQ0 + i)
                    elif IRQ0 + i not in n.active and i in n.levels:
                        pass  # a still-asserted level IRQ stays pending
                    else:
                        n.pending.discard(IRQ0 + i)
                n.recheck()
                return
        if IPR <= off < IPR + NUM_IRQ:
            i = off - IPR
            for k in range(4):
                if mask >> (8 * k) & 0xFF and i + k < NUM_IRQ:
                    n.ipr[i + k] = (value >> (8 * k)) & PRIO_BITS_MASK
            n.recheck()
            return
        if off == ICSR:
            if v & ICSR_PENDSTSET:
                n.pend(SYSTICK)
            if v & ICSR_PENDSTCLR:
                n.pending.discard(SYSTICK)
            if v & ICSR_PENDSVSET:
                n.pend(PENDSV)
            if v & ICSR_PENDSVCLR:
                n.pending.discard(PENDSV)
            if v & (1 << 31):
                n.pend(NMI)
            return
        if off == VTOR:
            self.vtor = self.merge(self.vtor, value, mask) & 0xFFFF_FE00
            return
        if off == AIRCR:
            if mask != 0xFFFF_FFFF or value >> 16 != AIRCR_VECTKEY:
                return  # writes without VECTKEY are ignored (PM0214 section 4.4.5)
            n.prigroup = (value >> 8) & 7
            if value & AIRCR_SYSRESETREQ:
                self.control.request_reset("software")
            return
        if off == SCR:
            self.scr = self.merge(self.scr, value, mask) & 0x16
            return
        if off == CCR:
            self.ccr = self.merge(self.ccr, value, mask) & 0x31B
            return
        if off in (SHPR1, SHPR2, SHPR3):
            e = 4 + (off - SHPR1)
            for k in range(4):
                if mask >> (8 * k) & 0xFF:
                    n.shpr[e + k] = (value >> (8 * k)) & PRIO_BITS_MASK
            n.recheck()
            return
        if off == SHCSR:
            self.shcsr = self.merge(self.shcsr, value, mask) & 0x7_0000
            return
        if off in (CFSR, HFSR):
            if off == CFSR:
                self.cfsr &= ~v
            else:
                self.hfsr &= ~v
            return
        if off == CPACR:
            self.cpacr = self.merge(self.cpacr, value, mask) & 0x00F0_0000
            return
        if off == DEMCR:
            self.demcr = self.merge(self.demcr, value, mask) & 0x010F_07F1
            return
        if off == STIR:
            irq = v & 0x1FF
            if irq < NUM_IRQ:
                n.pend(IRQ0 + irq)
            return
        if off == FPCCR:
            self.fpccr = self.merge(self.fpccr, value, mask) & 0xC000_0000
            return
        if off == FPCAR:
            self.fpcar = v & ~7
            return
        if off == FPDSCR:
            self.fpdscr = self.merge(self.fpdscr, value, mask) & 0x07C0_0000
            return
        self.unmodeled(off, "write")


class Dwt(Peripheral):
    """DWT_CTRL and DWT_CYCCNT (ARMv7-M ARM section C1.8): the cycle counter follows virtual time."""

    name = "DWT"
    base = 0xE000_1000
    time_variant = frozenset({0x004})

    def __init__(self, faults: Faults, time: VirtualTime, clocks: Rcc) -> None:
        self.time = time
        self.clocks = clocks
        super().__init__(faults)

    def reset(self) -> None:
        self.ctrl = 0x4000_0000
        self.base_cycles = 0
        self.anchor_ps = 0

    def _cycles(self) -> int:
        if not self.ctrl & 1:
            return self.base_cycles
        hz = self.clocks.hclk_hz()
        return (self.base_cycles + (self.time.now_ps - self.anchor_ps) * hz // PS_PER_S) & 0xFFFF_FFFF

    def read(self, off: int) -> int:
        if off == 0x000:
            return self.ctrl
        if off == 0x004:
            return self._cycles()
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == 0x000:
            self.base_cycles = self._cycles()
            self.anchor_ps = self.time.now_ps
            self.ctrl = (self.ctrl & ~1) | (value & mask & 1)
        elif off == 0x004:
            self.base_cycles = value & mask
            self.anchor_ps = self.time.now_ps
        else:
            self.unmodeled(off, "write")

    def hclk_will_change(self) -> None:
        self.base_cycles = self._cycles()
        self.anchor_ps = self.time.now_ps

    def hclk_changed(self) -> None:
        """Counting goes on from the count frozen by ``hclk_will_change`` at the new rate."""


class Dbgmcu(Peripheral):
    """DBGMCU (RM0090 section 38.6): IDCODE with DEV_ID 0x413 (chip.py) and the board's REV_ID
    (``revision``, chip.REVISIONS; 0x1007 = revision 2 by default)."""

    name = "DBGMCU"
    base = 0xE004_2000
    revision = 0x1007

    def reset(self) -> None:
        self.r = {0x04: 0, 0x08: 0, 0x0C: 0}

    def read(self, off: int) -> int:
        if off == 0x00:
            return self.revision << 16 | 0x6000 | DEV_ID  # bits 15:12 (reserved) read 6 on the chip
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off in self.r:
            self.r[off] = self.merge(self.r[off], value, mask)
        else:
            self.unmodeled(off, "write")
