"""The twin as tests and tools use it: a virtual STM32F407VGT6 on an STM32F4-Discovery.

    >>> board = Stm32Twin()                          # doctest: +SKIP
    >>> board.load_build("build")                    # bootloader.bin, slot-a.bin, slot-b.bin
    >>> board.power_on()
    >>> board.run(ms=1200)
    >>> board.uart_lines[0]
    'boot: ...'

This module only builds the chip from its rooms and forwards to them (docs/twin.md, "Rooms"):
chip.py (the facts), memory.py and bus.py (memory map and peripheral bus), events.py (virtual
time and events), core.py and cpu.py (the run loop, exceptions), power.py (power and reset),
pins.py (the board's pins), loading.py (images into flash) and periph/ (the register blocks).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from unicorn import arm_const as A

from .bus import Bus
from .chip import REV_A, REVISIONS
from .core import Core, RunControl, cortex_m4
from .cpu import ExceptionUnit
from .erratum import StoreBeforeReturn
from .errors import TwinError
from .events import PS_PER_MS, PS_PER_S, PS_PER_US, Event, EventLog, VirtualTime
from .faults import Faults
from .flash import FlashInterface, FlashMemory, FlashOp
from .loading import Loader
from .memory import Memory
from .periph.base import Peripheral
from .periph.dma import Dma
from .periph.gpio import Exti, Syscfg
from .periph.misc import Adc, Crc, Iwdg, Rtc, Usart
from .periph.rcc import Pwr, Rcc
from .periph.scs import Dbgmcu, Dwt, Nvic, Scs, SysTick
from .periph.spi import Spi2
from .pins import Pins
from .power import Power, Supply
from .symbols import Symbols

DEFAULT_UID = bytes.fromhex("2f0034000d47363535373131")
NOISE_HALF_PERIOD_US = 250   # a floating input's level alternates at 2 kHz (pickup, crosstalk)


class Stm32Twin:
    """A virtual STM32F407VGT6 on an STM32F4-Discovery (8 MHz HSE, LEDs on PD12-PD15).

    strict: any access the twin does not model stops the run with a TwinFault naming address,
    width, PC and symbol (default); otherwise it is a 'warning' event and reads 0.
    flash_file: a 1 MB file that holds the flash between runs (created erased when missing).
    flash_timing: "typical" or "maximum" DS8626 program/erase times.
    Board and part parameters: vdda (volts at VDDA/VREF+, 3.0 on the Discovery board), sensor_v25
    (this part's temperature sensor at 25 C; its factory calibration in system memory follows it),
    revision (DBGMCU_IDCODE REV_ID, chip.REVISIONS); floating (pin names left unconnected, e.g.
    ("NSS", "SCK") for an absent ESP32: without a pull they alternate every NOISE_HALF_PERIOD_US
    while nothing drives them). Option bytes (FLASH_OPTCR, RM0090 3.9.10): hardware_watchdog (WDG_SW
    = 0: the IWDG runs from reset), bor_level (0 = off, or 1-3), rdp (0xAA level 0, 0xCC level 2,
    else level 1). lsi_hz: this part's LSI, 17-47 kHz (DS8626 table 40), which times the IWDG.
    """

    def __init__(self, flash_file: str | os.PathLike[str] | None = None, *, strict: bool = True,
                 flash_timing: str = "typical", temperature_c: float = 25.0, hse_hz: int = 8_000_000,
                 uid: bytes = DEFAULT_UID, vdda: float = 3.0, sensor_v25: float = 0.76,
                 revision: int = REVISIONS["2"], floating: tuple[str, ...] = (),
                 hardware_watchdog: bool = False, lsi_hz: int = 32_000, bor_level: int = 0,
                 rdp: int = 0xAA) -> None:
        if flash_timing not in ("typical", "maximum"):
            raise TwinError(f"Failed to create the twin: flash_timing must be 'typical' or 'maximum', "
                            f"not {flash_timing!r}")
        if len(uid) != 12:
            raise TwinError("Failed to create the twin: the unique ID has 12 bytes")
        if not 1.8 <= vdda <= 3.6:
            raise TwinError(f"Failed to create the twin: vdda {vdda} V is outside 1.8-3.6 V "
                            "(DS8626 table 14)")
        if not 17_000 <= lsi_hz <= 47_000:
            raise TwinError(f"Failed to create the twin: lsi_hz {lsi_hz} is outside 17000-47000 Hz "
                            "(DS8626 table 40)")
        if bor_level not in (0, 1, 2, 3) or not 0 <= rdp <= 0xFF:
            raise TwinError(f"Failed to create the twin: bor_level must be 0 (off) to 3 and rdp one "
                            f"byte, not {bor_level!r} and {rdp!r}")
        if revision not in REVISIONS.values():
            known = ", ".join(f"0x{v:04X} ({k})" for k, v in REVISIONS.items())
            raise TwinError(f"Failed to create the twin: revision 0x{revision:04X} is not one of {known}")
        self.uid = uid
        self.flash_mem = FlashMemory(flash_file)
        # Rooms without models first, then the register blocks, each given what it works with,
        # then the bus, power and the run loop that tie them together.
        self.uc = uc = cortex_m4()
        self.sched = time = VirtualTime()
        self.log = log = EventLog(time)
        self.events, self.uart_lines, self.listeners = log.events, log.uart_lines, log.listeners
        self.symbols = Symbols()
        self.control = control = RunControl(uc, time)
        self.supply = supply = Supply()
        self.memory = memory = Memory(uc, self.flash_mem, uid, control)
        self.nvic = nvic = Nvic(uc, control)
        self.faults = faults = Faults(strict, log, control, uc, self.symbols, nvic)

        self.pwr = Pwr(faults)
        self.rtc = Rtc(faults, self.pwr)
        self.rcc = rcc = Rcc(faults, time, self.pwr, self.rtc, hse_hz)
        self.exti = Exti(faults, nvic)
        self.syscfg = Syscfg(faults)
        self.pins = Pins(faults, supply, log, self.syscfg, self.exti)
        self.gpio = self.pins.ports
        self.flash = FlashInterface(faults, time, nvic, memory, control, flash_timing)
        self.flash.erased.append(lambda op: self.flash_erased(op))
        self.systick = SysTick(time, rcc, nvic)
        self.scs = Scs(faults, nvic, self.systick, control)
        self.usart2 = Usart(faults, time, rcc, log, nvic)
        self.iwdg = Iwdg(faults, time, control, lsi_hz)
        self.iwdg.hardware = hardware_watchdog
        self.crc = Crc(faults)
        self.adc = Adc(faults, time, rcc, temperature_c, vdda=vdda, v25=sensor_v25)
        for address, code in self.adc.factory_calibration().items():
            memory.write(address, code.to_bytes(2, "little"))
        self.dma = Dma(faults, time, nvic, memory, rcc)
        self.spi2 = Spi2(faults, time, nvic, self.dma, self.gpio["B"])
        self.dwt = Dwt(faults, time, rcc)
        self.dbgmcu = Dbgmcu(faults)
        self.dbgmcu.revision = revision
        self.flash.prefetch_allowed = revision != REV_A
        bor_bits = {0: 3, 1: 2, 2: 1, 3: 0}[bor_level]   # BOR_LEV: 11 off, 10 level 1 ... 00 level 3
        self.flash.option_bytes = (0x0FFF_00C1 | rdp << 8 | (0 if hardware_watchdog else 1 << 5)
                                   | bor_bits << 2)
        rcc.flash_latency = lambda: self.flash.acr & 7
        self.peripherals: list[Peripheral] = [
            rcc, self.pwr, *self.gpio.values(), self.exti, self.syscfg, self.flash, self.scs,
            self.usart2, self.iwdg, self.crc, self.adc, self.rtc, self.dma, self.spi2, self.dwt, self.dbgmcu]
        rcc.hclk_listeners += [self.systick, self.dwt]
        rcc.reset_lines.update({p.name: p for p in self.peripherals})

        self.bus = Bus(uc, self.peripherals, rcc, control, faults, memory, self.flash, supply)
        self.power = Power(uc, time, log, control, faults, supply, memory, self.bus, self.flash, rcc,
                           self.peripherals, list(self.gpio.values()))
        self.erratum = StoreBeforeReturn(uc, faults)
        self.exc = ExceptionUnit(uc, nvic, self.scs, memory, self.flash, control, faults, self.erratum)
        self.core = Core(uc, time, log, control, faults, self.symbols, nvic, self.exc, rcc, memory,
                         self.flash, self.bus, supply, self.power, self.erratum)
        self.loader = Loader(memory, self.symbols)
        for name in floating:
            port, pin = self.pins.resolve(name)
            self.gpio[port].floating.add(pin)
        if floating:
            self.power.after_reset.append(self._next_noise)

    def _next_noise(self) -> None:
        self.sched.at(self.sched.now_ps + NOISE_HALF_PERIOD_US * PS_PER_US, self._pick_up_noise, "pin noise")

    def _pick_up_noise(self) -> None:
        """Alternate the level of the floating pins (an EXTI edge each time where one is selected)."""
        for port in self.gpio.values():
            if port.floating:
                port.noise ^= 1
                port.update()
        self._next_noise()

    def close(self) -> None:
        """Write the flash file (if any) and release it."""
        self.flash_mem.close()

    def __enter__(self) -> Stm32Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state --------------------------------------------------------------------------------------
    @property
    def now_ps(self) -> int:
        return self.sched.now_ps

    @property
    def now_us(self) -> float:
        return self.sched.now_ps / PS_PER_US

    @property
    def now_ms(self) -> float:
        return self.sched.now_ps / PS_PER_MS

    @property
    def powered(self) -> bool:
        return self.supply.on

    @property
    def nrst_low(self) -> bool:
        return self.supply.nrst_low

    @property
    def fault(self) -> str | None:
        return self.faults.fault

    @property
    def strict(self) -> bool:
        return self.faults.strict

    @property
    def instructions(self) -> int:
        """Instructions of the slices run to their count (an upper bound, see Core)."""
        return self.core.instructions

    @property
    def cpu_hz(self) -> int:
        return self.rcc.hclk_hz()

    @property
    def flash_timing(self) -> str:
        return self.flash.timing

    @property
    def hse_hz(self) -> int:
        return self.rcc.hse_hz

    @property
    def temperature_c(self) -> float:
        return self.adc.temperature_c

    @temperature_c.setter
    def temperature_c(self, value: float) -> None:
        self.adc.temperature_c = value

    @property
    def adc_inputs(self) -> dict[int, float]:
        """Volts on the ADC channels, by channel number."""
        return self.adc.inputs

    @property
    def vdda(self) -> float:
        return self.adc.vdda

    @vdda.setter
    def vdda(self, value: float) -> None:
        self.adc.vdda = value

    # -- loading (loading.py) ---------------------------------------------------------------------
    def load_bin(self, path: str | os.PathLike[str], address: int | None = None) -> None:
        """Write a binary into flash at ``address`` as a programmer would (no flash operations);
        without an address, where the .hex or .elf file beside it says."""
        self.loader.load_bin(path, address)

    def load_bytes(self, data: bytes, address: int, name: str = "data") -> None:
        self.loader.load_bytes(data, address, name)

    def load_image(self, path: str | os.PathLike[str], address: int | None = None) -> None:
        """A .hex, .elf or .bin file (see loading.py), with the symbols of its ELF file."""
        self.loader.load_image(path, address)

    def load_flash_file(self, path: str | os.PathLike[str]) -> None:
        """Copy a whole 1 MB flash image into the flash."""
        self.loader.load_flash_file(path)

    def load_elf_symbols(self, path: str | os.PathLike[str]) -> None:
        self.symbols.add_elf(path)

    def load_build(self, build_dir: str | os.PathLike[str], *, bootloader: bool = True, slot_a: bool = True,
                   slot_b: bool = True) -> list[str]:
        """Load bootloader.bin, slot-a.bin and slot-b.bin from a build directory (and the symbols of
        the ELF files beside them). Returns the files loaded."""
        return self.loader.load_build(build_dir, bootloader=bootloader, slot_a=slot_a, slot_b=slot_b)

    # -- memory (memory.py, bus.py) -----------------------------------------------------------------
    def flash_bytes(self, address: int, n: int) -> bytes:
        return self.memory.flash_bytes(address, n)

    def flash_snapshot(self) -> bytes:
        """The whole flash array (restore it with ``restore_flash``)."""
        return self.memory.snapshot()

    def restore_flash(self, data: bytes) -> None:
        self.memory.restore(data)

    def write_flash(self, offset: int, data: bytes) -> None:
        """Change flash contents at ``offset`` in the array (no flash operation)."""
        self.memory.write_flash(offset, data)

    def read_memory(self, address: int, n: int) -> bytes:
        return self.memory.read(address, n)

    def read_reg(self, address: int) -> int:
        """Read a 32-bit peripheral register without side effects on busy-wait detection.
        (Registers with read side effects, such as a data register, do have them.)"""
        return self.bus.read_reg(address)

    def register(self, name: str) -> int:
        """CPU register by name: 'pc', 'sp', 'r0', 'lr', 'xpsr', 'control', 'primask', ..."""
        reg = getattr(A, f"UC_ARM_REG_{name.upper()}", None)
        if reg is None:
            raise TwinError(f"Failed to read CPU register {name!r}: no such register")
        return int(self.uc.reg_read(reg))

    def flash_erased(self, op: FlashOp) -> None:
        """Hook for tests and tools (an erase finished)."""

    # -- power and reset (power.py) ---------------------------------------------------------------
    def power_on(self) -> None:
        """Apply power: RAM and the backup domain start cleared, reset flags POR/PIN/BOR."""
        self.power.power_on()

    def power_off(self) -> None:
        """Remove power now (an operation in progress on the flash is interrupted)."""
        self.power.power_off()

    def power_cycle(self, off_ms: float = 10.0) -> None:
        self.power.power_cycle(off_ms)

    def cut_power_at_us(self, t_us: float) -> None:
        """Cut the power at virtual time t_us (absolute)."""
        self.power.cut_at_us(t_us)

    def cut_power_at_ps(self, t_ps: int) -> None:
        self.power.cut_at_ps(t_ps)

    def cut_power_at_flash_op(self, n: int) -> None:
        """Cut the power in the middle of the n-th flash operation (erase or program) counted since
        the twin was created (see ``flash_op_count``)."""
        self.power.cut_at_flash_op(n)

    @property
    def flash_op_count(self) -> int:
        return self.flash.op_count

    def reset_pin(self) -> None:
        """Pulse NRST: a system reset with PINRSTF."""
        if self.supply.on:
            self.power.system_reset("pin")

    # -- running (core.py) ------------------------------------------------------------------------
    def run(self, ms: float | None = None, us: float | None = None) -> None:
        """Run for a virtual duration."""
        dur = int((ms or 0) * PS_PER_MS + (us or 0) * PS_PER_US)
        self.core.run_until_ps(self.sched.now_ps + dur)

    def run_to_ps(self, t_ps: int) -> None:
        self.core.run_until_ps(t_ps)

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
        events = self.events
        seen = [len(events)]
        hit: list[Event] = []

        def stop() -> bool:  # sticky: also called from inside a slice when an event is emitted
            while not hit and seen[0] < len(events):
                ev = events[seen[0]]
                seen[0] += 1
                if pred(ev):
                    hit.append(ev)
            return bool(hit)

        self.core.run_until_ps(self.sched.now_ps + int(timeout_ms * PS_PER_MS), stop)
        stop()
        return hit[0] if hit else None

    # -- pins and the SPI master (pins.py, periph/spi.py) -------------------------------------------
    def pin(self, name: str) -> int:
        """Level of a pin (what a probe would measure)."""
        if name == "NRST":
            return 0 if self.supply.nrst_low else 1
        return self.pins.level(name)

    def set_pin(self, name: str, level: int | None) -> None:
        """Drive a pin from outside (None: release it). 'NRST' low holds the chip in reset."""
        if name == "NRST":
            self.power.set_nrst(level == 0)
        else:
            self.pins.drive(name, level)

    @property
    def leds(self) -> dict[str, bool]:
        return self.pins.leds

    def wait_pin(self, name: str, level: int, timeout_ms: float) -> bool:
        """Run until the pin reads ``level``; False after timeout_ms of virtual time."""
        if self.pin(name) == level:
            return True
        deadline = self.sched.now_ps + int(timeout_ms * PS_PER_MS)
        self.core.run_until_ps(deadline, lambda: self.pin(name) == level)
        return self.pin(name) == level

    def spi_transfer(self, tx: bytes, hz: int = 10_500_000, *, setup_us: float = 1.0,
                     hold_us: float = 1.0) -> bytes:
        """One SPI transaction as the master: NSS (PB12) low, ``setup_us``, the bytes clocked at
        ``hz`` while the CPU runs, ``hold_us``, NSS high. Returns the bytes read on MISO."""
        if hz <= 0:
            raise TwinError(f"Failed to clock SPI: {hz} Hz")
        run = self.core.run_until_ps
        self.set_pin("NSS", 0)
        run(self.sched.now_ps + int(setup_us * PS_PER_US))
        x = self.spi2.begin(tx, hz)
        end = x.boundary_ps(len(tx))
        run(end, lambda: x.done)
        if not x.done:  # the board was off or faulted: finish the clocking without it
            self.sched.advance(end)
        rx = self.spi2.end()
        rx += bytes([0xFF]) * (len(tx) - len(rx))
        run(self.sched.now_ps + int(hold_us * PS_PER_US))
        self.set_pin("NSS", 1)
        return rx

    # -- reports ----------------------------------------------------------------------------------
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
