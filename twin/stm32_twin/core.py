"""The CPU and its run loop: Unicorn runs the instructions, the loop supplies time and exceptions.

Virtual time advances with executed instructions at HCLK (one instruction per cycle), in slices
that end at the next scheduled event, so timers fire on time. Waiting costs no host time: WFI
sleeps until the next event, and a busy-wait (bus.py detects it) jumps to the next event that can
end it. The models stop a slice early through ``RunControl``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from unicorn import UC_ARCH_ARM, UC_HOOK_INTR, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn import arm_const as A
from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

from .errors import TwinFault
from .events import PS_PER_S, EventLog, VirtualTime
from .faults import Halt
from .periph.scs import HARDFAULT, SVCALL
from .regs import RegBank

if TYPE_CHECKING:
    from .bus import Bus
    from .cpu import ExceptionUnit
    from .erratum import StoreBeforeReturn
    from .faults import Faults
    from .flash import FlashInterface
    from .memory import Memory
    from .periph.rcc import Rcc
    from .periph.scs import Nvic
    from .power import Power, Supply
    from .symbols import Symbols

MAX_SLICE = 10_000            # instructions per Unicorn call at most
MASKED_SLICE = 32             # instructions between looks at a masked pending interrupt
WFI = 0xBF30
# Timers that can interrupt a busy-wait whatever it polls: interrupts, resets, power.
# Not the watchdog: a wait bounded by an iteration count ends on the chip long before a watchdog
# that was widened for it (the bootloader waiting for an absent HSE under a hardware watchdog), so a
# busy-wait runs on towards the watchdog instead of jumping to it.
WAKE_ALWAYS = frozenset({"systick irq", "power cut", "spi byte", "flash program", "flash erase",
                         "flash mass"})
EXCP_NAMES = {1: "undefined instruction", 3: "prefetch abort", 4: "data abort", 7: "breakpoint",
              17: "coprocessor access (FPU disabled?)", 18: "invalid state (ARM state / bad EXC_RETURN)",
              19: "stack overflow", 22: "unaligned access"}


def cortex_m4() -> Uc:
    """A Unicorn CPU of the STM32F407's core (Cortex-M4 with FPU), with nothing mapped yet."""
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
    return uc


class RunControl:
    """What the models may do to the running CPU: end the current slice, stall until a time, skip
    a busy-wait, ask for a system reset (performed between slices)."""

    def __init__(self, uc: Uc, time: VirtualTime) -> None:
        self.uc = uc
        self.time = time
        self.stop_reason: str | None = None    # why the current slice ends early
        self.in_emu = False                    # inside Unicorn's emu_start
        self.sleeping = False                  # in WFI
        self.reset_request: str | None = None  # cause of the system reset to perform
        self.deadline = 0                      # end of the current run

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.in_emu:
            self.uc.emu_stop()

    def stall_until(self, t_ps: int) -> None:
        """The CPU waits (bus stall) until t_ps: events up to then happen meanwhile."""
        if t_ps > self.time.now_ps:
            self.time.advance(t_ps)
            self.request_stop("stall")

    def request_reset(self, cause: str) -> None:
        self.reset_request = cause
        self.request_stop("reset")

    def idle_skip(self, wakers: frozenset[str]) -> None:
        """A busy-wait: what it reads cannot change before the next timer that can change it (or
        that raises an interrupt or a reset), so go there. When no such timer is pending, the loop
        keeps running instructions: a wait bounded by an iteration count must still time out."""
        time = self.time
        nxt = time.next_time_of(wakers | WAKE_ALWAYS)
        if nxt is None:
            if "deadline" not in wakers:
                return
            nxt = self.deadline
        target = min(nxt, self.deadline)
        if target > time.now_ps:
            time.advance(target)
            self.request_stop("skip")


class Core:
    """The run loop, and the CPU exceptions Unicorn reports (exception return, SVC, faults)."""

    def __init__(self, uc: Uc, time: VirtualTime, log: EventLog, control: RunControl, faults: Faults,
                 symbols: Symbols, nvic: Nvic, exc: ExceptionUnit, clocks: Rcc, memory: Memory,
                 flash: FlashInterface, bus: Bus, supply: Supply, power: Power,
                 erratum: StoreBeforeReturn) -> None:
        self.uc = uc
        self.erratum = erratum
        self.time = time
        self.log = log
        self.control = control
        self.faults = faults
        self.symbols = symbols
        self.nvic = nvic
        self.exc = exc
        self.clocks = clocks
        self.memory = memory
        self.flash = flash
        self.bus = bus
        self.supply = supply
        self.power = power
        # Instructions of the slices run to their count. An upper bound: a slice that ends in WFI
        # counts in full (Unicorn does not say how far it got); bench/bench_twin.py counts exactly.
        self.instructions = 0
        self._stop_pred: Callable[[], bool] | None = None
        self._pc_reg = RegBank(uc, [A.UC_ARM_REG_PC])
        log.after_emit = self._event_emitted
        uc.hook_add(UC_HOOK_INTR, self._on_intr)

    def run_until_ps(self, until_ps: int, stop: Callable[[], bool] | None = None) -> bool:
        """Run until virtual time ``until_ps`` or until ``stop()`` is true (then True). ``stop`` is
        asked between slices and whenever an event is emitted."""
        self._stop_pred = stop
        try:
            return self._loop(until_ps, stop)
        finally:
            self._stop_pred = None

    def _event_emitted(self) -> None:
        control = self.control
        if control.in_emu and self._stop_pred is not None and control.stop_reason is None \
                and self._stop_pred():
            control.request_stop("event")  # run_until / wait_pin: return at the event, not at slice end

    def _loop(self, until_ps: int, stop: Callable[[], bool] | None) -> bool:
        uc, time, control, nvic, faults = self.uc, self.time, self.control, self.nvic, self.faults
        memory, flash, bus, supply, clocks = self.memory, self.flash, self.bus, self.supply, self.clocks
        control.deadline = until_ps
        fault_before = faults.fault
        while True:
            if control.reset_request and supply.on:
                self.power.system_reset(control.reset_request)
            if stop is not None and stop():
                return True
            if faults.fault is not None and faults.fault != fault_before and faults.strict:
                raise TwinFault(faults.fault)
            if time.now_ps >= until_ps:
                return False
            nxt = time.next_time()
            limit = until_ps if nxt is None else min(nxt, until_ps)
            if not supply.on or faults.fault is not None or supply.nrst_low:
                time.advance(limit)
                time.run_due()
                continue
            if control.sleeping:
                if nvic.pending and nvic.best_pending(0, 0) is not None:
                    control.sleeping = False  # WFI wakes on a pending interrupt even when masked
                else:
                    time.advance(limit)
                    time.run_due()
                    continue
            masked = False
            if nvic.pending:
                try:
                    exc = nvic.takeable()
                    if exc is not None:
                        self.exc.enter(exc)
                        bus.poll_addr = -1
                    else:
                        # Pending but masked (PRIMASK/BASEPRI/priority): CPSIE or an MSR is not a
                        # memory access the twin sees, so look again after a few instructions.
                        masked = nvic.best_pending(0, 0) is not None
                except Halt:
                    continue
                if control.stop_reason:
                    control.stop_reason = None
                    continue
            hz = clocks.hclk_hz()
            n = min(MASKED_SLICE if masked else MAX_SLICE, max(1, -(-(limit - time.now_ps) * hz // PS_PER_S)))
            control.stop_reason = None
            pc = self._pc_reg.read()[0]
            if flash.op is not None and memory.in_flash(pc):
                # The next instruction comes from the busy flash: the CPU stalls until the operation
                # ends. (Done here: Unicorn does not survive a protection change while it looks up
                # the first instruction of a slice.)
                time.advance(flash.op.end_ps)
                continue
            if memory.flash_closing != memory.flash_closed:
                memory.apply_flash_access()
            if self.erratum.pending:
                self.erratum.install()
            control.in_emu = True
            try:
                uc.emu_start(pc | 1, 0xFFFF_FFFF, 0, n)
            except UcError as e:
                control.in_emu = False
                if memory.stall_retry:
                    memory.stall_retry = False
                    memory.apply_flash_access()
                    continue
                if faults.fault is None:
                    faults.fail(faults.where(f"CPU stopped: {e}"))
                continue
            finally:
                control.in_emu = False
            if control.stop_reason is None:
                time.now_ps += n * PS_PER_S // hz
                self.instructions += n
                pc = self._pc_reg.read()[0]
                if memory.halfword_before(pc) == WFI:
                    control.sleeping = True
            time.run_due()

    def _on_intr(self, uc: Uc, intno: int, _ud: object) -> None:
        pc = int(uc.reg_read(A.UC_ARM_REG_PC))
        nvic = self.nvic
        try:
            if intno == 8 and pc >= 0xFFFF_FF00:
                self.bus.poll_addr = -1
                self.erratum.returning()
                self.exc.leave(pc)
                exc = nvic.takeable()
                if exc is not None:  # tail-chain: enter the next handler right away
                    self.erratum.tail_chained(exc)
                    self.exc.enter(exc)
                return
            if intno == 2:
                nvic.pending.add(SVCALL)
                self.control.request_stop("svc")
                return
        except Halt:
            return
        what = EXCP_NAMES.get(intno, f"CPU exception {intno}")
        sym = self.symbols.lookup(pc)
        msg = f"{what} at PC 0x{pc:08X}{' in ' + sym if sym else ''}"
        if self.faults.strict or intno == 18:
            self.faults.fail(msg)
        else:
            self.faults.warn(msg + " (HardFault)")
            nvic.pending.add(HARDFAULT)
            self.control.request_stop("fault")
