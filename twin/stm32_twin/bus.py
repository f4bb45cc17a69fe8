"""The peripheral bus: each register block's address range dispatched to its model, with the check
the chip makes (a block whose RCC clock is off ignores the access) and two things the twin adds:

- the clock-enable delay (ES0182 section 2.1.13): an access to a peripheral fewer than 2 (AHB) or
  1 + AHB/APB prescaler (APB) instructions after the store that enabled its clock, with no DSB in
  between, is lost (a write does nothing, a read returns 0), and strict mode reports it. The
  instructions between the enabling store and the access are decoded from memory (one cycle each,
  the twin's timing); a read-back of the RCC register counts as one instruction, not as a barrier;
- busy-wait detection: the same register read with the same value ``POLL_THRESHOLD`` times in
  a row, with no peripheral write in between, is a poll; time jumps to the next timer that can
  change what it reads (``RunControl.idle_skip``);
- replay: Unicorn aborts the instruction whose memory callback asked to stop, and executes it
  again when the CPU resumes. The access that asked to stop has had its effect: it is recorded,
  and its re-execution is answered from the record. Accesses made after the request (same
  instruction or later ones) are dropped: they run again, for real, after the restart. Records
  are keyed by (PC, address, kind): an interrupt taken at the stop may itself stop in a callback
  before the first instruction is executed again (nested handlers).

It also takes the CPU's accesses that the memory map refuses: stores to the flash array (the
flash interface programs them), fetches from the busy flash (a stall), and unmapped addresses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from unicorn import (
    UC_HOOK_MEM_PROT,
    UC_HOOK_MEM_UNMAPPED,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    Uc,
)
from unicorn import arm_const as A

from .faults import Halt
from .regs import RegBank

if TYPE_CHECKING:
    from .core import RunControl
    from .faults import Faults
    from .flash import FlashInterface
    from .memory import Memory
    from .periph.base import Peripheral
    from .periph.rcc import Rcc
    from .power import Supply

POLL_THRESHOLD = 4            # identical reads of one register before a busy-wait is assumed
DSB_HI, DSB_LO_MASK, DSB_LO = 0xF3BF, 0xFFF0, 0x8F40   # DSB #option (ARMv7-M ARM A7.7.33, T1)
ENR_OFFSETS = {0x30: "AHB1ENR", 0x34: "AHB2ENR", 0x38: "AHB3ENR", 0x40: "APB1ENR", 0x44: "APB2ENR"}


class Bus:
    def __init__(self, uc: Uc, peripherals: Sequence[Peripheral], clocks: Rcc, control: RunControl,
                 faults: Faults, memory: Memory, flash: FlashInterface, supply: Supply) -> None:
        self.uc = uc
        self.peripherals = list(peripherals)
        self.clocks = clocks
        self.control = control
        self.faults = faults
        self.memory = memory
        self.flash = flash
        self.supply = supply
        self.poll_addr = -1
        self.poll_val = -1
        self.poll_n = 0
        self.replay: dict[tuple[int, int, str], int] = {}
        # Clocks enabled by a store whose delay window may still be open: (register, bit) -> PC.
        self.settling: dict[tuple[str, int], int] = {}
        self._pc_reg = RegBank(uc, [A.UC_ARM_REG_PC])
        for p in self.peripherals:
            rd, wr = self._mmio(p)
            uc.mmio_map(p.base, p.size, rd, None, wr, None)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        uc.hook_add(UC_HOOK_MEM_PROT, self._on_prot)

    def forget(self) -> None:
        """System reset: no poll in progress, no access to replay."""
        self.poll_addr = -1
        self.replay.clear()
        self.settling.clear()

    # -- the clock-enable delay (ES0182 section 2.1.13) --------------------------------------------
    def _clock_enabled(self, off: int, old: int) -> None:
        name = ENR_OFFSETS.get(off)
        if name is None:
            return
        new = self.clocks.r[off] & ~old
        pc = self._pc_reg.read()[0]
        for bit in range(32):
            if new >> bit & 1:
                self.settling[(name, bit)] = pc

    def _window(self, reg: str) -> int:
        """Instructions that must separate the enable from the first access (ES0182 2.1.13)."""
        rcc = self.clocks
        if reg.startswith("AHB"):
            return 2
        pclk = rcc.pclk1_hz() if reg == "APB1ENR" else rcc.pclk2_hz()
        return 1 + max(1, rcc.hclk_hz() // max(1, pclk))

    def _too_early(self, clock: tuple[str, int]) -> bool:
        """True when this access falls in the delay window of its clock's enable."""
        enable_pc = self.settling.get(clock)
        if enable_pc is None:
            return False
        pc = self._pc_reg.read()[0]
        at = enable_pc + self._insn_size(enable_pc)
        for _ in range(self._window(clock[0])):
            if at == pc:
                return True
            hw = self._halfword(at)
            if hw == DSB_HI and self._halfword(at + 2) & DSB_LO_MASK == DSB_LO:
                break
            at += self._insn_size(at)
        del self.settling[clock]  # the window has passed (or a DSB closed it)
        return False

    def _halfword(self, address: int) -> int:
        try:
            return int.from_bytes(self.uc.mem_read(address, 2), "little")
        except Exception:
            return 0

    def _insn_size(self, address: int) -> int:
        return 4 if self._halfword(address) >> 11 in (0b11101, 0b11110, 0b11111) else 2

    def read_reg(self, address: int) -> int:
        """Read a 32-bit peripheral register without side effects on busy-wait detection.
        (Registers with read side effects, such as a data register, do have them.)"""
        for p in self.peripherals:
            if p.base <= address < p.base + p.size:
                return p.read((address - p.base) & ~3)
        return int.from_bytes(self.uc.mem_read(address, 4), "little")

    # -- register blocks ------------------------------------------------------------------------
    def _mmio(self, p: Peripheral) -> tuple[Callable[..., int], Callable[..., None]]:
        base = p.base
        clock = p.clock
        rcc = self.clocks
        control = self.control
        faults = self.faults
        variant = p.time_variant

        def clock_off(addr: int, access: str) -> bool:
            if clock and not rcc.enabled(*clock):
                faults.strict_violation(addr, f"{access} of {p.name} at 0x{addr:08X} while its clock is off "
                                              f"(RCC_{clock[0]} bit {clock[1]})")
                return True
            if clock and self.settling and self._too_early(clock):
                faults.strict_violation(addr, f"{access} of {p.name} at 0x{addr:08X} lost: within "
                                              f"{self._window(clock[0])} cycles of its clock enable "
                                              f"(RCC_{clock[0]} bit {clock[1]}), no DSB between "
                                              "(ES0182 2.1.13)")
                return True
            return False

        def read(uc: Uc, offset: int, size: int, _ud: object) -> int:
            addr = base + offset
            if control.stop_reason is not None:
                return 0  # aborted by the stop request: the instruction runs again later
            if self.replay:
                hit, v = self._replayed(addr, "r")
                if hit:
                    return v
            faults.last_access = (addr, size)
            try:
                if clock and clock_off(addr, "read"):
                    return 0
                if addr == self.poll_addr and self.poll_n >= POLL_THRESHOLD:
                    control.idle_skip(p.wakers)
                reg = offset & ~3
                value = (p.read(reg) >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)
                if addr == self.poll_addr and value == self.poll_val and reg not in variant:
                    self.poll_n += 1
                else:
                    self.poll_addr, self.poll_val, self.poll_n = addr, value, 1
            except Halt:
                return 0
            except Exception as e:  # a bug in a model must not vanish inside Unicorn
                faults.fail(f"internal error in the {p.name} model on a read at 0x{addr:08X}: {e!r}")
                return 0
            self._note_replay(addr, "r", value)
            return value

        def write(uc: Uc, offset: int, size: int, value: int, _ud: object) -> None:
            addr = base + offset
            if control.stop_reason is not None:
                return  # aborted by the stop request: the instruction runs again later
            if self.replay and self._replayed(addr, "w")[0]:
                return
            faults.last_access = (addr, size)
            self.poll_addr = -1
            try:
                if clock and clock_off(addr, "write"):
                    return
                shift = 8 * (offset & 3)
                mask = (((1 << (8 * size)) - 1) << shift) & 0xFFFF_FFFF
                if p is rcc and (offset & ~3) in ENR_OFFSETS:
                    old = rcc.r[offset & ~3]
                    p.write(offset & ~3, (value << shift) & 0xFFFF_FFFF, mask)
                    self._clock_enabled(offset & ~3, old)
                else:
                    p.write(offset & ~3, (value << shift) & 0xFFFF_FFFF, mask)
            except Halt:
                return
            except Exception as e:
                faults.fail(f"internal error in the {p.name} model on a write at 0x{addr:08X}: {e!r}")
            self._note_replay(addr, "w", 0)

        return read, write

    def _note_replay(self, addr: int, kind: str, value: int) -> None:
        if self.control.stop_reason is not None and self.control.in_emu:
            self.replay[(self._pc_reg.read()[0], addr, kind)] = value

    def _replayed(self, addr: int, kind: str) -> tuple[bool, int]:
        key = (self._pc_reg.read()[0], addr, kind)
        if key in self.replay:
            return True, self.replay.pop(key)
        return False, 0

    # -- accesses the memory map refuses ----------------------------------------------------------
    def _on_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object) -> bool:
        faults = self.faults
        kind = {UC_MEM_READ_UNMAPPED: "read", UC_MEM_WRITE_UNMAPPED: "write",
                UC_MEM_FETCH_UNMAPPED: "fetch"}.get(access, "access")
        peripheral_space = 0x4000_0000 <= address < 0x6000_0000 or address >= 0xE000_0000
        if not faults.strict and kind != "fetch" and peripheral_space:
            page = address & ~0x3FF
            faults.warn(faults.where(f"unmodeled {kind} of {size} byte(s) at 0x{address:08X}: reads 0"))
            uc.mmio_map(page, 0x400, lambda *a: 0, None, lambda *a: None, None)
            return True
        faults.fail(faults.where(f"{kind} of {size} byte(s) at unmapped address 0x{address:08X}"))
        return False

    def _on_prot(self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object) -> bool:
        memory, flash = self.memory, self.flash
        try:
            if not memory.in_flash(address):
                kind = {UC_MEM_WRITE_PROT: "write", UC_MEM_FETCH_PROT: "fetch"}.get(access, "read")
                self.faults.fail(self.faults.where(
                    f"{kind} of {size} byte(s) at 0x{address:08X} is not allowed "
                    f"(read-only memory, or CCM which cannot hold code)"))
                return False
            if not self.supply.on:
                return True
            if access == UC_MEM_WRITE_PROT:
                if self.control.stop_reason is not None:
                    return True  # dropped: the instruction runs again after the stop
                if self.replay and self._replayed(address, "f")[0]:
                    return True
                flash.cpu_write(address, size, value)
                self._note_replay(address, "f", 0)
                return True
            # A fetch or read while an operation runs: the CPU waits for its end. Unicorn does not
            # survive a protection change here, so the access fails, the slice ends and the run
            # loop restores the access and resumes at the same instruction.
            if flash.op is not None:
                self.control.stall_until(flash.op.end_ps)
            memory.stall_retry = True
            return False
        except Halt:
            return True
