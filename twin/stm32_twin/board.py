"""The STM32F407 twin: Unicorn runs the instructions, this module supplies memory, peripherals,
exceptions and virtual time (see docs/twin.md).

    >>> board = Stm32Twin()                          # doctest: +SKIP
    >>> board.load_build("build")                    # bootloader.bin, slot-a.bin, slot-b.bin
    >>> board.power_on()
    >>> board.run(ms=1200)
    >>> board.uart_lines[0]
    'boot: ...'

Virtual time advances with executed instructions at the core clock (one instruction per cycle),
in slices that end at the next scheduled event, so timers fire on time. Waiting costs no host
time: WFI sleeps until the next event, and a busy-wait (the same peripheral register read with the
same value several times in a row with no peripheral write in between) jumps to the next event.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fota_formats.spec import LAYOUT
from unicorn import (
    UC_ARCH_ARM,
    UC_HOOK_INTR,
    UC_HOOK_MEM_PROT,
    UC_HOOK_MEM_UNMAPPED,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_NONE,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as A
from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

from . import cpu
from .errors import TwinError, TwinFault
from .events import PS_PER_MS, PS_PER_S, PS_PER_US, Event, Scheduler
from .flash import FLASH_BASE, FLASH_SIZE, FlashInterface, FlashMemory, FlashOp
from .periph.base import Peripheral
from .periph.dma import Dma
from .periph.gpio import Exti, GpioPort, Syscfg
from .periph.misc import Adc, Crc, Iwdg, Rtc, Usart
from .periph.rcc import RESET_FLAGS, Pwr, Rcc
from .periph.scs import HARDFAULT, SVCALL, Dbgmcu, Dwt, Scs
from .periph.spi import Spi2
from .regs import RegBank
from .symbols import Symbols

SRAM_BASE, SRAM_SIZE = LAYOUT.sram_base, LAYOUT.sram_size
CCM_BASE, CCM_SIZE = LAYOUT.ccm_base, LAYOUT.ccm_size
SYSINFO_BASE = 0x1FFF_7800    # OTP + unique ID + flash size (RM0090 sections 2.3, 39.1, 39.2)
UID_OFFSET, FLASH_SIZE_OFFSET = 0x210, 0x222
DEFAULT_UID = bytes.fromhex("2f0034000d47363535373131")
MAX_SLICE = 10_000            # instructions per Unicorn call at most
MASKED_SLICE = 32              # instructions between looks at a masked pending interrupt
POLL_THRESHOLD = 4            # identical reads of one register before a busy-wait is assumed
WFI = 0xBF30
# Timers that can interrupt a busy-wait whatever it polls: interrupts, resets, power.
WAKE_ALWAYS = frozenset({"systick irq", "iwdg", "power cut", "spi byte", "flash program", "flash erase",
                         "flash mass"})
LEDS = {12: "green", 13: "orange", 14: "red", 15: "blue"}  # STM32F4-Discovery, port D
PIN_ALIASES = {"NSS": "PB12", "READY": "PB11", "SCK": "PB13", "MISO": "PB14", "MOSI": "PB15",
               "USART2_TX": "PA2", "BUTTON": "PA0",
               "green": "PD12", "orange": "PD13", "red": "PD14", "blue": "PD15"}
EXCP_NAMES = {1: "undefined instruction", 3: "prefetch abort", 4: "data abort", 7: "breakpoint",
              17: "coprocessor access (FPU disabled?)", 18: "invalid state (ARM state / bad EXC_RETURN)",
              19: "stack overflow", 22: "unaligned access"}


class Stm32Twin:
    """A virtual STM32F407VGT6 on an STM32F4-Discovery (8 MHz HSE, LEDs on PD12-PD15).

    strict: any access the twin does not model stops the run with a TwinFault naming address,
    width, PC and symbol (default); otherwise it is a 'warning' event and reads 0.
    flash_file: a 1 MB file that holds the flash between runs (created erased when missing).
    flash_timing: "typical" or "maximum" DS8626 program/erase times.
    """

    def __init__(self, flash_file: str | os.PathLike[str] | None = None, *, strict: bool = True,
                 flash_timing: str = "typical", temperature_c: float = 25.0, hse_hz: int = 8_000_000,
                 uid: bytes = DEFAULT_UID) -> None:
        if flash_timing not in ("typical", "maximum"):
            raise TwinError(f"Failed to create the twin: flash_timing must be 'typical' or 'maximum', "
                            f"not {flash_timing!r}")
        if len(uid) != 12:
            raise TwinError("Failed to create the twin: the unique ID has 12 bytes")
        self.strict = strict
        self.flash_timing = flash_timing
        self.temperature_c = temperature_c
        self.hse_hz = hse_hz
        self.vdda = 3.3
        self.adc_inputs: dict[int, float] = {}
        self.uid = uid
        self.now_ps = 0
        self.sched = Scheduler()
        self.events: list[Event] = []
        self.uart_lines: list[str] = []
        self.listeners: list[Callable[[Event], None]] = []
        self.symbols = Symbols()
        # Instructions of the slices run to their count. An upper bound: a slice that ends in WFI
        # counts in full (Unicorn does not say how far it got); bench/bench_twin.py counts exactly.
        self.instructions = 0
        self.powered = False
        self.fault: str | None = None
        self.nrst_low = False
        self._deadline = 0
        self._stop_reason: str | None = None
        self._reset_request: str | None = None
        self._sleeping = False
        self._poll_addr = -1
        self._poll_val = -1
        self._poll_n = 0
        self._access: tuple[int, int] = (0, 0)
        self._replay: dict[tuple[int, int, str], int] = {}
        self._flash_busy_want = False
        self._stall_retry = False
        self._stop_pred: Callable[[], bool] | None = None
        self._flash_prot_none = False
        self._cut_timer = None
        self.flash_mem = FlashMemory(flash_file)
        self._build()

    # ---------------------------------------------------------------------------------------------
    # construction
    def _build(self) -> None:
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.uc = uc
        ptr = ctypes.addressof(ctypes.c_char.from_buffer(self.flash_mem.mm))
        self._flash_ptr = ptr
        uc.mem_map_ptr(FLASH_BASE, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ptr)
        uc.mem_map_ptr(0, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ptr)   # boot alias (BOOT0 = 0)
        uc.mem_map(SRAM_BASE, SRAM_SIZE, UC_PROT_ALL)
        uc.mem_map(CCM_BASE, CCM_SIZE, UC_PROT_READ | UC_PROT_WRITE)      # data only: no fetch
        uc.mem_map(SYSINFO_BASE, 0x400, UC_PROT_READ)
        info = bytearray(b"\xff" * 0x400)
        info[UID_OFFSET:UID_OFFSET + 12] = self.uid
        info[FLASH_SIZE_OFFSET:FLASH_SIZE_OFFSET + 2] = (FLASH_SIZE // 1024).to_bytes(2, "little")
        uc.mem_write(SYSINFO_BASE, bytes(info))

        self.rcc = Rcc(self)
        self.pwr = Pwr(self)
        self.gpio = {c: GpioPort(self, c) for c in "ABCDE"}
        self.exti = Exti(self)
        self.syscfg = Syscfg(self)
        self.flash = FlashInterface(self)
        self.scs = Scs(self)
        self.nvic = self.scs.nvic
        self.systick = self.scs.systick
        self.usart2 = Usart(self)
        self.iwdg = Iwdg(self)
        self.crc = Crc(self)
        self.adc = Adc(self)
        self.rtc = Rtc(self)
        self.dma = Dma(self)
        self.spi2 = Spi2(self)
        self.dwt = Dwt(self)
        self.dbgmcu = Dbgmcu(self)
        self.peripherals: list[Peripheral] = [
            self.rcc, self.pwr, *self.gpio.values(), self.exti, self.syscfg, self.flash, self.scs,
            self.usart2, self.iwdg, self.crc, self.adc, self.rtc, self.dma, self.spi2, self.dwt, self.dbgmcu]
        self._by_name = {p.name: p for p in self.peripherals}
        for p in self.peripherals:
            rd, wr = self._mmio(p)
            uc.mmio_map(p.base, p.size, rd, None, wr, None)
        self.exc = cpu.ExceptionUnit(self)
        self._prio_regs = RegBank(uc, [A.UC_ARM_REG_PRIMASK, A.UC_ARM_REG_BASEPRI])
        self._pc_reg = RegBank(uc, [A.UC_ARM_REG_PC])
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        uc.hook_add(UC_HOOK_MEM_PROT, self._on_prot)

    def close(self) -> None:
        """Write the flash file (if any) and release it."""
        self.flash_mem.close()

    def __enter__(self) -> Stm32Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------
    # loading
    def load_bin(self, path: str | os.PathLike[str], address: int) -> None:
        """Write a binary into flash at ``address`` as a programmer would (no flash operations)."""
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise TwinError(f"Failed to load {path}: {e.strerror}") from e
        self.load_bytes(data, address, name=str(path))

    def load_bytes(self, data: bytes, address: int, name: str = "data") -> None:
        if not (address >= FLASH_BASE and address + len(data) <= FLASH_BASE + FLASH_SIZE):
            raise TwinError(f"Failed to load {name}: {len(data)} bytes at 0x{address:08X} do not fit the "
                            f"flash (0x{FLASH_BASE:08X}-0x{FLASH_BASE + FLASH_SIZE:08X})")
        self.write_flash(address - FLASH_BASE, data)

    def load_flash_file(self, path: str | os.PathLike[str]) -> None:
        """Copy a whole 1 MB flash image into the flash."""
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise TwinError(f"Failed to load flash file {path}: {e.strerror}") from e
        if len(data) != FLASH_SIZE:
            raise TwinError(f"Failed to load flash file {path}: {len(data)} bytes, "
                            f"a flash image has {FLASH_SIZE}")
        self.write_flash(0, data)

    def load_elf_symbols(self, path: str | os.PathLike[str]) -> None:
        self.symbols.add_elf(path)

    def load_build(self, build_dir: str | os.PathLike[str], *, bootloader: bool = True, slot_a: bool = True,
                   slot_b: bool = True) -> list[str]:
        """Load bootloader.bin, slot-a.bin and slot-b.bin from a build directory (and the symbols of
        the ELF files beside them). Returns the files loaded."""
        d = Path(build_dir)
        wanted = [("bootloader", LAYOUT.region("bootloader").base, bootloader),
                  ("slot-a", LAYOUT.region("slot_a").base, slot_a),
                  ("slot-b", LAYOUT.region("slot_b").base, slot_b)]
        loaded = []
        for name, base, want in wanted:
            if not want:
                continue
            binf = d / f"{name}.bin"
            if not binf.exists():
                raise TwinError(f"Failed to load the build: {binf} does not exist (run `invoke build`)")
            self.load_bin(binf, base)
            loaded.append(str(binf))
            elf = d / f"{name}.elf"
            if elf.exists():
                self.symbols.add_elf(elf)
        return loaded

    # ---------------------------------------------------------------------------------------------
    # flash and memory access
    def flash_bytes(self, address: int, n: int) -> bytes:
        off = address - FLASH_BASE if address >= FLASH_BASE else address
        if not (off >= 0 and off + n <= FLASH_SIZE):
            raise TwinError(f"Failed to read flash: 0x{address:08X}+{n} is outside the flash")
        return bytes(self.flash_mem.mm[off:off + n])

    def flash_snapshot(self) -> bytes:
        """The whole flash array (restore it with ``restore_flash``)."""
        return bytes(self.flash_mem.mm[:])

    def restore_flash(self, data: bytes) -> None:
        if len(data) != FLASH_SIZE:
            raise TwinError(f"Failed to restore the flash: {len(data)} bytes, expected {FLASH_SIZE}")
        # Only the pages that differ: code translated from the others stays valid.
        mm = self.flash_mem.mm
        page = 0x1000
        for off in range(0, FLASH_SIZE, page):
            if mm[off:off + page] != data[off:off + page]:
                self.write_flash(off, data[off:off + page])

    def write_flash(self, offset: int, data: bytes) -> None:
        """Change flash contents (both mappings, so that translated code is invalidated)."""
        self.uc.mem_write(FLASH_BASE + offset, data)
        self.uc.ctl_remove_cache(offset, offset + len(data))

    def read_memory(self, address: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(address, n))

    def read_reg(self, address: int) -> int:
        """Read a 32-bit peripheral register without side effects on busy-wait detection.
        (Registers with read side effects, such as a data register, do have them.)"""
        for p in self.peripherals:
            if p.base <= address < p.base + p.size:
                return p.read((address - p.base) & ~3)
        return int.from_bytes(self.uc.mem_read(address, 4), "little")

    def register(self, name: str) -> int:
        """CPU register by name: 'pc', 'sp', 'r0', 'lr', 'xpsr', 'control', 'primask', ..."""
        reg = getattr(A, f"UC_ARM_REG_{name.upper()}", None)
        if reg is None:
            raise TwinError(f"Failed to read CPU register {name!r}: no such register")
        return int(self.uc.reg_read(reg))

    def stack_write(self, address: int, data: bytes) -> None:
        self._check_ram(address, len(data), "exception frame")
        self.uc.mem_write(address, data)

    def stack_read(self, address: int, n: int) -> bytes:
        self._check_ram(address, n, "exception frame")
        return bytes(self.uc.mem_read(address, n))

    def _check_ram(self, address: int, n: int, what: str) -> None:
        ok = (address >= SRAM_BASE and address + n <= SRAM_BASE + SRAM_SIZE) or \
             (address >= CCM_BASE and address + n <= CCM_BASE + CCM_SIZE)
        if not ok:
            self.fail(f"{what} at 0x{address:08X} (+{n}) is outside SRAM and CCM: stack pointer corrupt?")
            raise _Halt

    def dma_reachable(self, address: int, n: int) -> bool:
        return address >= SRAM_BASE and address + n <= SRAM_BASE + SRAM_SIZE

    def dma_write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, data)

    def dma_read(self, address: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(address, n))

    def read_vector(self, exc: int) -> int:
        addr = self.scs.vtor + 4 * exc
        if self.flash.op and (addr < FLASH_SIZE or FLASH_BASE <= addr < FLASH_BASE + FLASH_SIZE):
            self.stall_until(self.flash.op.end_ps)  # vector fetch from flash waits for the operation
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    # ---------------------------------------------------------------------------------------------
    # callbacks from the peripheral models
    @property
    def cpu_hz(self) -> int:
        return self.rcc.hclk_hz()

    def emit(self, kind: str, data: Any) -> Event:
        ev = Event(self.now_ps, kind, data)
        self.events.append(ev)
        if kind == "uart":
            self.uart_lines.append(data)
        for fn in self.listeners:
            fn(ev)
        if self._in_emu and self._stop_pred is not None and self._stop_reason is None and self._stop_pred():
            self._request_stop("event")  # run_until / wait_pin: return at the event, not at slice end
        return ev

    def pin_changed(self, port: str, pin: int, level: int) -> None:
        name = f"P{port}{pin}"
        if port == "D" and pin in LEDS:
            self.emit("led", {"led": LEDS[pin], "on": bool(level)})
        self.emit("pin", {"pin": name, "level": level})
        if self.syscfg.port_of_line(pin) == port:
            self.exti.edge(pin, rising=bool(level))

    def irq_pended(self) -> None:
        """An exception became pending or a priority changed: stop the slice when it can be taken."""
        if self._in_emu and self._stop_reason is None and self._takeable() is not None:
            self._request_stop("irq")

    def clock_will_change(self) -> None:
        self.systick.freeze()
        self.dwt.freeze()

    def clock_changed(self) -> None:
        self.systick.clock_changed()

    def peripheral_reset(self, name: str) -> None:
        names = {"ADC": "ADC", "DMA1": "DMA1", "SPI2": "SPI2", "USART2": "USART2", "CRC": "CRC",
                 "SYSCFG": "SYSCFG", "PWR": "PWR"}
        p = self._by_name.get(names.get(name, name))
        if p is not None:
            p.reset()
            if isinstance(p, GpioPort):
                p.update()

    def backup_domain_reset(self) -> None:
        self.rtc.power_off()
        self.rcc.bdcr = 0

    def flash_busy(self, busy: bool) -> None:
        """While an operation runs, no CPU access to the array succeeds without stalling.

        Revoking access from inside the store that started the operation crashes Unicorn, so
        that direction ends the slice and takes effect before the next one."""
        self._flash_busy_want = busy
        if busy and self._in_emu:
            self._request_stop("flash")
            return
        self._apply_flash_prot()

    def _apply_flash_prot(self) -> None:
        busy = self._flash_busy_want and self.flash.op is not None
        if busy == self._flash_prot_none:
            return
        self._flash_prot_none = busy
        prot = UC_PROT_NONE if busy else UC_PROT_READ | UC_PROT_EXEC
        self.uc.mem_protect(FLASH_BASE, FLASH_SIZE, prot)
        self.uc.mem_protect(0, FLASH_SIZE, prot)

    def flash_erased(self, op: FlashOp) -> None:
        """Hook for tests and tools (an erase finished)."""

    def stall_until(self, t_ps: int) -> None:
        """The CPU waits (bus stall) until t_ps: events up to then happen meanwhile."""
        if t_ps > self.now_ps:
            self._advance(t_ps)
            self._request_stop("stall")

    def request_reset(self, cause: str) -> None:
        self._reset_request = cause
        self._request_stop("reset")

    def strict_violation(self, address: int, message: str) -> None:
        if self.strict:
            self.fail(self._where(message))
        else:
            self.emit("warning", self._where(message))

    def unmodeled_access(self, address: int, access: str, what: str) -> None:
        size = self._access[1] if self._access[0] == address else 4
        msg = f"unmodeled {what}: {access} of {size} byte(s) at 0x{address:08X}"
        self.strict_violation(address, msg)

    def bus_fault(self, address: int, message: str) -> None:
        if self.strict:
            self.fail(self._where(f"bus error at 0x{address:08X}: {message}"))
        else:
            self.emit("warning", self._where(f"bus error at 0x{address:08X}: {message} (HardFault)"))
            self.nvic.pend(HARDFAULT)

    def fail(self, message: str) -> None:
        """Stop the CPU with a fault (strict mode violations, crashes)."""
        if self.fault is None:
            self.fault = message
            self.emit("fault", message)
        self._request_stop("fault")

    def _where(self, message: str) -> str:
        try:
            pc = int(self.uc.reg_read(A.UC_ARM_REG_PC))
        except UcError:
            return message
        sym = self.symbols.lookup(pc)
        return f"{message} (PC 0x{pc:08X}{' in ' + sym if sym else ''})"

    # ---------------------------------------------------------------------------------------------
    # Unicorn hooks
    def _mmio(self, p: Peripheral) -> tuple[Callable[..., int], Callable[..., None]]:
        base = p.base
        clock = p.clock
        rcc = self.rcc
        variant = p.time_variant

        def clock_off(addr: int, access: str) -> bool:
            if clock and not rcc.enabled(*clock):
                self.strict_violation(addr, f"{access} of {p.name} at 0x{addr:08X} while its clock is off "
                                            f"(RCC_{clock[0]} bit {clock[1]})")
                return True
            return False

        def read(uc: Uc, offset: int, size: int, _ud: object) -> int:
            addr = base + offset
            if self._stop_reason is not None:
                return 0  # aborted by the stop request: the instruction runs again later
            if self._replay:
                hit, v = self._replayed(addr, "r")
                if hit:
                    return v
            self._access = (addr, size)
            try:
                if clock and clock_off(addr, "read"):
                    return 0
                if addr == self._poll_addr and self._poll_n >= POLL_THRESHOLD:
                    self._idle_skip(p.wakers)
                reg = offset & ~3
                value = (p.read(reg) >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)
                if addr == self._poll_addr and value == self._poll_val and reg not in variant:
                    self._poll_n += 1
                else:
                    self._poll_addr, self._poll_val, self._poll_n = addr, value, 1
            except _Halt:
                return 0
            except Exception as e:  # a bug in a model must not vanish inside Unicorn
                self.fail(f"internal error in the {p.name} model on a read at 0x{addr:08X}: {e!r}")
                return 0
            self._note_replay(addr, "r", value)
            return value

        def write(uc: Uc, offset: int, size: int, value: int, _ud: object) -> None:
            addr = base + offset
            if self._stop_reason is not None:
                return  # aborted by the stop request: the instruction runs again later
            if self._replay and self._replayed(addr, "w")[0]:
                return
            self._access = (addr, size)
            self._poll_addr = -1
            try:
                if clock and clock_off(addr, "write"):
                    return
                shift = 8 * (offset & 3)
                mask = (((1 << (8 * size)) - 1) << shift) & 0xFFFF_FFFF
                p.write(offset & ~3, (value << shift) & 0xFFFF_FFFF, mask)
            except _Halt:
                return
            except Exception as e:
                self.fail(f"internal error in the {p.name} model on a write at 0x{addr:08X}: {e!r}")
            self._note_replay(addr, "w", 0)

        return read, write

    # Unicorn aborts the instruction whose memory callback asked to stop, and executes it again
    # when the CPU resumes. The access that asked to stop has had its effect: remember it and
    # answer its re-execution from the record. Accesses made after the request (same instruction
    # or later ones) are dropped: they run again, for real, after the restart.
    # The records are keyed by (PC, address, kind): an interrupt taken at the stop may itself stop
    # in a callback before the first instruction is executed again (nested handlers).
    def _note_replay(self, addr: int, kind: str, value: int) -> None:
        if self._stop_reason is not None and self._in_emu:
            self._replay[(self._pc_reg.read()[0], addr, kind)] = value

    def _replayed(self, addr: int, kind: str) -> tuple[bool, int]:
        key = (self._pc_reg.read()[0], addr, kind)
        if key in self._replay:
            return True, self._replay.pop(key)
        return False, 0

    def _on_intr(self, uc: Uc, intno: int, _ud: object) -> None:
        pc = int(uc.reg_read(A.UC_ARM_REG_PC))
        try:
            if intno == 8 and pc >= 0xFFFF_FF00:
                self._poll_addr = -1
                self.exc.leave(pc)
                exc = self._takeable()
                if exc is not None:  # tail-chain: enter the next handler right away
                    self.exc.enter(exc)
                return
            if intno == 2:
                self.nvic.pending.add(SVCALL)
                self._request_stop("svc")
                return
        except _Halt:
            return
        what = EXCP_NAMES.get(intno, f"CPU exception {intno}")
        sym = self.symbols.lookup(pc)
        msg = f"{what} at PC 0x{pc:08X}{' in ' + sym if sym else ''}"
        if self.strict or intno == 18:
            self.fail(msg)
        else:
            self.emit("warning", msg + " (HardFault)")
            self.nvic.pending.add(HARDFAULT)
            self._request_stop("fault")

    def _on_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object) -> bool:
        kind = {UC_MEM_READ_UNMAPPED: "read", UC_MEM_WRITE_UNMAPPED: "write",
                UC_MEM_FETCH_UNMAPPED: "fetch"}.get(access, "access")
        peripheral_space = 0x4000_0000 <= address < 0x6000_0000 or address >= 0xE000_0000
        if not self.strict and kind != "fetch" and peripheral_space:
            page = address & ~0x3FF
            msg = f"unmodeled {kind} of {size} byte(s) at 0x{address:08X}: reads 0"
            self.emit("warning", self._where(msg))
            uc.mmio_map(page, 0x400, lambda *a: 0, None, lambda *a: None, None)
            return True
        self.fail(self._where(f"{kind} of {size} byte(s) at unmapped address 0x{address:08X}"))
        return False

    def _on_prot(self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object) -> bool:
        in_flash = address < FLASH_SIZE or FLASH_BASE <= address < FLASH_BASE + FLASH_SIZE
        try:
            if not in_flash:
                kind = {UC_MEM_WRITE_PROT: "write", UC_MEM_FETCH_PROT: "fetch"}.get(access, "read")
                self.fail(self._where(f"{kind} of {size} byte(s) at 0x{address:08X} is not allowed "
                                      f"(read-only memory, or CCM which cannot hold code)"))
                return False
            if not self.powered:
                return True
            if access == UC_MEM_WRITE_PROT:
                if self._stop_reason is not None:
                    return True  # dropped: the instruction runs again after the stop
                if self._replay and self._replayed(address, "f")[0]:
                    return True
                self.flash.cpu_write(address, size, value)
                self._note_replay(address, "f", 0)
                return True
            # A fetch or read while an operation runs: the CPU waits for its end. Unicorn does not
            # survive a protection change here, so the access fails, the slice ends and the run
            # loop restores the access and resumes at the same instruction.
            if self.flash.op is not None:
                self.stall_until(self.flash.op.end_ps)
            self._stall_retry = True
            return False
        except _Halt:
            return True
        return True

    # ---------------------------------------------------------------------------------------------
    # time
    def _advance(self, t_ps: int) -> None:
        """Move virtual time to t_ps (never backwards), running the events due until then."""
        while True:
            nxt = self.sched.next_time()
            if nxt is None or nxt > t_ps:
                break
            self.now_ps = max(self.now_ps, nxt)
            self._run_due()
        self.now_ps = max(self.now_ps, t_ps)

    def _run_due(self) -> None:
        while True:
            cb = self.sched.pop_due(self.now_ps)
            if cb is None:
                return
            cb()

    def _idle_skip(self, wakers: frozenset[str]) -> None:
        """A busy-wait: what it reads cannot change before the next timer that can change it (or
        that raises an interrupt or a reset), so go there. When no such timer is pending, the loop
        keeps running instructions: a wait bounded by an iteration count must still time out."""
        nxt = self.sched.next_time_of(wakers | WAKE_ALWAYS)
        if nxt is None:
            if "deadline" not in wakers:
                return
            nxt = self._deadline
        target = min(nxt, self._deadline)
        if target > self.now_ps:
            self._advance(target)
            self._request_stop("skip")

    def _request_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._in_emu:
            self.uc.emu_stop()

    _in_emu = False

    def _takeable(self) -> int | None:
        if not self.nvic.pending:
            return None
        primask, basepri = self._prio_regs.read()
        return self.nvic.best_pending(primask, basepri)

    # ---------------------------------------------------------------------------------------------
    # power and reset
    def power_on(self) -> None:
        """Apply power: RAM and the backup domain start cleared, reset flags POR/PIN/BOR."""
        if self.powered:
            return
        self.uc.mem_write(SRAM_BASE, bytes(SRAM_SIZE))
        self.uc.mem_write(CCM_BASE, bytes(CCM_SIZE))
        for p in self.peripherals:
            p.power_off()
        self.powered = True
        self.emit("power", "on")
        self._system_reset("power")

    def power_off(self) -> None:
        """Remove power now (an operation in progress on the flash is interrupted)."""
        if not self.powered:
            return
        self.flash.interrupt()
        self.powered = False
        self.sched.clear()
        for g in self.gpio.values():  # unpowered, the pins float low: outputs drop, LEDs go off
            g.reset()
            g.update()
        self._cut_timer = None
        self.emit("power", "off")
        self._request_stop("power")

    def power_cycle(self, off_ms: float = 10.0) -> None:
        self.power_off()
        self._advance(self.now_ps + int(off_ms * PS_PER_MS))
        self.power_on()

    def cut_power_at_us(self, t_us: float) -> None:
        """Cut the power at virtual time t_us (absolute)."""
        self.cut_power_at_ps(int(t_us * PS_PER_US))

    def cut_power_at_ps(self, t_ps: int) -> None:
        if self._cut_timer:
            self._cut_timer.cancel()
        self._cut_timer = self.sched.at(max(t_ps, self.now_ps), self.power_off, "power cut")

    def cut_power_at_flash_op(self, n: int) -> None:
        """Cut the power in the middle of the n-th flash operation (erase or program) counted since
        the twin was created (see ``flash_op_count``)."""
        if n < 1:
            raise TwinError(f"Failed to arm the power cut: flash operation numbers start at 1, not {n}")
        self.flash.cut_at_op = n

    @property
    def flash_op_count(self) -> int:
        return self.flash.op_count

    def reset_pin(self) -> None:
        """Pulse NRST: a system reset with PINRSTF."""
        if self.powered:
            self._system_reset("pin")

    def _system_reset(self, cause: str) -> None:
        self.flash.interrupt()
        self.rcc.csr_flags |= RESET_FLAGS[cause]
        keep_timers = [t for t in [self._cut_timer] if t is not None and t.pending]
        self.sched.clear()
        for t in keep_timers:
            self._cut_timer = self.sched.at(t.time_ps, self.power_off, "power cut")
        for p in self.peripherals:
            p.reset()
        for g in self.gpio.values():
            g.update()
        self.fault = None
        self._sleeping = False
        self._reset_request = None
        self._poll_addr = -1
        self._replay.clear()
        self.flash_busy(False)
        uc = self.uc
        regs = [(getattr(A, f"UC_ARM_REG_R{i}"), 0) for i in range(13)]
        regs += [(getattr(A, f"UC_ARM_REG_S{i}"), 0) for i in range(32)]
        regs += [(A.UC_ARM_REG_FPSCR, 0), (A.UC_ARM_REG_PRIMASK, 0), (A.UC_ARM_REG_BASEPRI, 0),
                 (A.UC_ARM_REG_FAULTMASK, 0), (A.UC_ARM_REG_XPSR, 1 << 24), (A.UC_ARM_REG_CONTROL, 0)]
        uc.reg_write_batch(regs)
        sp = int.from_bytes(self.flash_bytes(0, 4), "little")
        pc = int.from_bytes(self.flash_bytes(4, 4), "little")
        uc.reg_write_batch([(A.UC_ARM_REG_MSP, sp), (A.UC_ARM_REG_SP, sp), (A.UC_ARM_REG_LR, 0xFFFF_FFFF),
                            (A.UC_ARM_REG_PC, pc | 1)])
        self.emit("reset", {"cause": cause})

    # ---------------------------------------------------------------------------------------------
    # running
    def run(self, ms: float | None = None, us: float | None = None) -> None:
        """Run for a virtual duration."""
        dur = int((ms or 0) * PS_PER_MS + (us or 0) * PS_PER_US)
        self._run(self.now_ps + dur, None)

    def run_to_ps(self, t_ps: int) -> None:
        self._run(t_ps, None)

    def run_until(self, what: str | Callable[[Event], bool], timeout_ms: float,
                  match: str | None = None) -> Event | None:
        """Run until an event of kind ``what`` (with ``match`` in its text, for 'uart') or an event
        for which ``what(event)`` is true; None after timeout_ms of virtual time."""
        if isinstance(what, str):
            kind = what

            def pred(ev: Event) -> bool:
                return ev.kind == kind and (match is None or match in str(ev.data))
        else:
            pred = what
        start = len(self.events)
        seen = [start]
        hit: list[Event] = []

        def stop() -> bool:  # sticky: also called from inside a slice when an event is emitted
            while not hit and seen[0] < len(self.events):
                ev = self.events[seen[0]]
                seen[0] += 1
                if pred(ev):
                    hit.append(ev)
            return bool(hit)

        self._run(self.now_ps + int(timeout_ms * PS_PER_MS), stop)
        stop()
        return hit[0] if hit else None

    def _run(self, until_ps: int, stop: Callable[[], bool] | None) -> bool:
        self._stop_pred = stop
        try:
            return self._loop(until_ps, stop)
        finally:
            self._stop_pred = None

    def _loop(self, until_ps: int, stop: Callable[[], bool] | None) -> bool:
        uc = self.uc
        self._deadline = until_ps
        fault_before = self.fault
        while True:
            if self._reset_request and self.powered:
                self._system_reset(self._reset_request)
            if stop is not None and stop():
                return True
            if self.fault is not None and self.fault != fault_before and self.strict:
                raise TwinFault(self.fault)
            if self.now_ps >= until_ps:
                return False
            nxt = self.sched.next_time()
            limit = until_ps if nxt is None else min(nxt, until_ps)
            if not self.powered or self.fault is not None or self.nrst_low:
                self._advance(limit)
                self._run_due()
                continue
            if self._sleeping:
                if self.nvic.pending and self.nvic.best_pending(0, 0) is not None:
                    self._sleeping = False  # WFI wakes on a pending interrupt even when masked
                else:
                    self._advance(limit)
                    self._run_due()
                    continue
            masked = False
            if self.nvic.pending:
                try:
                    exc = self._takeable()
                    if exc is not None:
                        self.exc.enter(exc)
                        self._poll_addr = -1
                    else:
                        # Pending but masked (PRIMASK/BASEPRI/priority): CPSIE or an MSR is not a
                        # memory access the twin sees, so look again after a few instructions.
                        masked = self.nvic.best_pending(0, 0) is not None
                except _Halt:
                    continue
                if self._stop_reason:
                    self._stop_reason = None
                    continue
            hz = self.cpu_hz
            n = min(MASKED_SLICE if masked else MAX_SLICE, max(1, -(-(limit - self.now_ps) * hz // PS_PER_S)))
            self._stop_reason = None
            pc = self._pc_reg.read()[0]
            if self.flash.op is not None and (pc < FLASH_SIZE or FLASH_BASE <= pc < FLASH_BASE + FLASH_SIZE):
                # The next instruction comes from the busy flash: the CPU stalls until the operation
                # ends. (Done here: Unicorn does not survive a protection change while it looks up
                # the first instruction of a slice.)
                self._advance(self.flash.op.end_ps)
                continue
            if self._flash_busy_want != self._flash_prot_none:
                self._apply_flash_prot()
            self._in_emu = True
            try:
                uc.emu_start(pc | 1, 0xFFFF_FFFF, 0, n)
            except UcError as e:
                self._in_emu = False
                if self._stall_retry:
                    self._stall_retry = False
                    self._apply_flash_prot()
                    continue
                if self.fault is None:
                    self.fail(self._where(f"CPU stopped: {e}"))
                continue
            finally:
                self._in_emu = False
            if self._stop_reason is None:
                self.now_ps += n * PS_PER_S // hz
                self.instructions += n
                pc = self._pc_reg.read()[0]
                if self._halfword_before(pc) == WFI:
                    self._sleeping = True
            self._run_due()

    def _halfword_before(self, pc: int) -> int:
        mm = self.flash_mem.mm
        if FLASH_BASE + 2 <= pc < FLASH_BASE + FLASH_SIZE:
            off = pc - FLASH_BASE - 2
            return mm[off] | (mm[off + 1] << 8)
        if 2 <= pc < 0xE000_0000:
            try:
                return int.from_bytes(self.uc.mem_read(pc - 2, 2), "little")
            except UcError:
                return 0
        return 0

    # ---------------------------------------------------------------------------------------------
    # pins and SPI master
    def _resolve_pin(self, name: str) -> tuple[str, int]:
        n = PIN_ALIASES.get(name, name)
        if len(n) < 3 or n[0] != "P" or n[1] not in self.gpio or not n[2:].isdigit() or int(n[2:]) > 15:
            raise TwinError(f"Failed to find pin {name!r}: use a name like 'PB11' or one of "
                            f"{', '.join(sorted(PIN_ALIASES))}, or 'NRST'")
        return n[1], int(n[2:])

    def pin(self, name: str) -> int:
        """Level of a pin (what a probe would measure)."""
        if name == "NRST":
            return 0 if self.nrst_low else 1
        port, pin = self._resolve_pin(name)
        return self.gpio[port].level(pin)

    def set_pin(self, name: str, level: int | None) -> None:
        """Drive a pin from outside (None: release it). 'NRST' low holds the chip in reset."""
        if name == "NRST":
            low = level == 0
            if low and not self.nrst_low:
                # Held in reset: peripherals and pins in their reset state, the CPU waits for the
                # release to fetch its reset vector.
                self.nrst_low = True
                if self.powered:
                    self._system_reset("pin")
                self._request_stop("nrst")
            elif not low and self.nrst_low:
                self.nrst_low = False
            return
        port, pin = self._resolve_pin(name)
        self.gpio[port].set_external(pin, level)

    @property
    def leds(self) -> dict[str, bool]:
        return {colour: bool(self.gpio["D"].level(pin)) for pin, colour in LEDS.items()}

    def wait_pin(self, name: str, level: int, timeout_ms: float) -> bool:
        """Run until the pin reads ``level``; False after timeout_ms of virtual time."""
        if self.pin(name) == level:
            return True
        self._run(self.now_ps + int(timeout_ms * PS_PER_MS), lambda: self.pin(name) == level)
        return self.pin(name) == level

    def spi_transfer(self, tx: bytes, hz: int = 10_500_000, *, setup_us: float = 1.0,
                     hold_us: float = 1.0) -> bytes:
        """One SPI transaction as the master: NSS (PB12) low, ``setup_us``, the bytes clocked at
        ``hz`` while the CPU runs, ``hold_us``, NSS high. Returns the bytes read on MISO."""
        if hz <= 0:
            raise TwinError(f"Failed to clock SPI: {hz} Hz")
        self.set_pin("NSS", 0)
        self._run(self.now_ps + int(setup_us * PS_PER_US), None)
        x = self.spi2.begin(tx, hz)
        end = x.boundary_ps(len(tx))
        self._run(end, lambda: x.done)
        if not x.done:  # the board was off or faulted: finish the clocking without it
            self._advance(end)
        rx = self.spi2.end()
        rx += bytes([0xFF]) * (len(tx) - len(rx))
        self._run(self.now_ps + int(hold_us * PS_PER_US), None)
        self.set_pin("NSS", 1)
        return rx

    def dma_changed(self) -> None:
        self.spi2.service_dma()
        if self.spi2.xfer is not None:
            self.spi2._process()

    # ---------------------------------------------------------------------------------------------
    @property
    def now_us(self) -> float:
        return self.now_ps / PS_PER_US

    @property
    def now_ms(self) -> float:
        return self.now_ps / PS_PER_MS

    def describe(self) -> str:
        """Short state summary for reports."""
        pc = int(self.uc.reg_read(A.UC_ARM_REG_PC))
        sym = self.symbols.lookup(pc)
        leds = ", ".join(c for c, on in self.leds.items() if on) or "none"
        state = "off" if not self.powered else ("fault" if self.fault else "running")
        where = f"PC 0x{pc:08X}{' (' + sym + ')' if sym else ''}"
        return (f"t = {self.now_ps / PS_PER_S:.6f} s, {state}, {where}, "
                f"core {self.cpu_hz / 1e6:g} MHz, LEDs on: {leds}, {len(self.uart_lines)} UART lines, "
                f"{self.flash_op_count} flash operations")

    def active_exception(self) -> int | None:
        """Number of the exception being handled (16 + IRQ for interrupts), None in thread mode."""
        return self.nvic.active[-1] if self.nvic.active else None


class _Halt(Exception):
    """Unwinds a model callback after the board stopped (fault)."""
