"""The flash memory and its interface (RM0090 chapter 3), with DS8626 timings and power cuts.

The 1 MB array is one buffer (a memory-mapped file when the twin persists its flash), mapped into
the CPU at 0x08000000 and at its boot alias 0x00000000 (memory.py). The CPU sees it read/execute
only: a store reaches ``cpu_write`` through Unicorn's write-protection hook (bus.py), so
programming costs nothing until the firmware programs. While an erase or program runs, the whole
array is mapped with no access at all; the first fetch or read then stalls the CPU until the
operation ends (single bank, RM0090 section 3.5.4). The sectors are the chip's (chip.py).
"""

from __future__ import annotations

import mmap
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .chip import FLASH_BASE, FLASH_SIZE, SECTORS, sector_at
from .errors import TwinError
from .events import PS_PER_MS, PS_PER_US, Timer
from .periph.base import Peripheral

if TYPE_CHECKING:
    from .core import RunControl
    from .events import VirtualTime
    from .faults import Faults
    from .memory import Memory
    from .periph.scs import Nvic

ERASED = 0xFF

# FLASH interface registers (RM0090 section 3.9)
ACR, KEYR, OPTKEYR, SR, CR, OPTCR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
ACR_PRFTEN = 1 << 8
KEY1, KEY2 = 0x4567_0123, 0xCDEF_89AB          # RM0090 section 3.5.1
OPTKEY1, OPTKEY2 = 0x0819_2A3B, 0x4C5D_6E7F    # RM0090 section 3.6.2
SR_EOP, SR_OPERR, SR_WRPERR, SR_PGAERR, SR_PGPERR, SR_PGSERR, SR_BSY = (
    1 << 0, 1 << 1, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 16)
SR_W1C = SR_EOP | SR_OPERR | SR_WRPERR | SR_PGAERR | SR_PGPERR | SR_PGSERR
SR_PROG_ERRORS = SR_WRPERR | SR_PGAERR | SR_PGPERR | SR_PGSERR
CR_PG, CR_SER, CR_MER, CR_STRT, CR_EOPIE, CR_ERRIE, CR_LOCK = (
    1 << 0, 1 << 1, 1 << 2, 1 << 16, 1 << 24, 1 << 25, 1 << 31)
CR_SNB_SHIFT, CR_PSIZE_SHIFT = 3, 8
FLASH_IRQ = 4

# DS8626 section 6.3.12, table "Flash memory programming" (2.7-3.6 V): (typical, maximum) in us,
# by PSIZE (0: x8, 1: x16, 2: x32, 3: x64 -> x32 figures, x64 needs an external Vpp).
PROGRAM_US = {"typical": 16, "maximum": 100}
ERASE_MS = {
    0x4000: {0: (400, 800), 1: (300, 600), 2: (250, 500)},
    0x10000: {0: (1200, 2400), 1: (700, 1400), 2: (550, 1100)},
    0x20000: {0: (2000, 4000), 1: (1300, 2600), 2: (1000, 2000)},
}
MASS_ERASE_MS = {0: (16000, 32000), 1: (11000, 22000), 2: (8000, 16000)}


@dataclass
class FlashOp:
    kind: str             # "program", "erase", "mass"
    number: int           # 1-based count since the flash was created
    start_ps: int
    end_ps: int
    offset: int           # byte offset in the array (program: the item; erase: the sector base)
    length: int
    data: bytes = b""     # program: the resulting bytes (old AND new)
    timer: Timer | None = None


class FlashMemory:
    """The 1 MB array, optionally backed by a file that persists it."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is None:
            self.mm = mmap.mmap(-1, FLASH_SIZE)
            self.mm.write(bytes([ERASED]) * FLASH_SIZE)
            return
        try:
            if not self.path.exists():
                self.path.write_bytes(bytes([ERASED]) * FLASH_SIZE)
            size = self.path.stat().st_size
            if size != FLASH_SIZE:
                raise TwinError(f"Failed to open flash file {self.path}: it has {size} bytes, "
                                f"a flash image has {FLASH_SIZE}")
            self._fd = os.open(self.path, os.O_RDWR)
            self.mm = mmap.mmap(self._fd, FLASH_SIZE)
        except OSError as e:
            raise TwinError(f"Failed to open flash file {self.path}: {e.strerror}") from e

    def flush(self) -> None:
        if self.path is not None:
            self.mm.flush()

    def close(self) -> None:
        self.flush()
        if self.path is not None:
            self.mm.close()
            os.close(self._fd)


class FlashInterface(Peripheral):
    """FLASH_ACR/KEYR/OPTKEYR/SR/CR/OPTCR and the operations they start on the array (``memory``).

    timing: "typical" or "maximum" DS8626 figures. ``op_started`` and ``erased`` are told of each
    operation that starts and each erase that completes."""

    name = "FLASH"
    base = 0x4002_3C00
    wakers = frozenset({"flash program", "flash erase", "flash mass"})

    def __init__(self, faults: Faults, time: VirtualTime, nvic: Nvic, memory: Memory, control: RunControl,
                 timing: str) -> None:
        self.time = time
        self.nvic = nvic
        self.memory = memory
        self.control = control
        self.timing = timing
        self.op: FlashOp | None = None
        self.op_count = 0
        self.wrp_sectors: set[int] = set()
        self.prefetch_allowed = True   # False on silicon revision A (board: revision)
        # FLASH_OPTCR as loaded from the option bytes at reset (RM0090 3.7.1, 3.9.10): RDP level 0
        # (0xAA), WDG_SW 1 (software watchdog), BOR off (BOR_LEV 11), nWRP from wrp_sectors.
        self.option_bytes = 0x0FFF_AAED
        self.op_started: list[Callable[[FlashOp], None]] = []
        self.erased: list[Callable[[FlashOp], None]] = []
        super().__init__(faults)

    def reset(self) -> None:
        self.acr = 0
        self.sr = 0
        self.cr = CR_LOCK
        self.optcr = self.option_bytes
        self.key_stage = 0
        self.opt_key_stage = 0
        self.lockup = False

    # -- registers ------------------------------------------------------------------------------
    def read(self, off: int) -> int:
        if off == ACR:
            return self.acr
        if off == SR:
            return self.sr | (SR_BSY if self.op else 0)
        if off == CR:
            return self.cr | (CR_STRT if self.op and self.op.kind != "program" else 0)
        if off == OPTCR:
            wrp = 0xFFF & ~sum(1 << s for s in self.wrp_sectors)
            return (self.optcr & ~(0xFFF << 16)) | (wrp << 16)
        if off in (KEYR, OPTKEYR):
            return 0
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        v = value & mask
        if off == ACR:
            self.acr = self.merge(self.acr, value, mask) & 0x1F07
            if self.acr & ACR_PRFTEN and not self.prefetch_allowed:
                # ES0182, revision A: "ART Accelerator prefetch queue instruction is not supported".
                self.faults.strict_violation(self.base + off, "FLASH_ACR PRFTEN set on silicon revision A "
                                             "(ES0182: prefetch not supported on revision A)")
        elif off == KEYR:
            self._key(v)
        elif off == OPTKEYR:
            if self.opt_key_stage == 0 and v == OPTKEY1:
                self.opt_key_stage = 1
            elif self.opt_key_stage == 1 and v == OPTKEY2:
                self.optcr &= ~1
                self.opt_key_stage = 0
            else:
                self.opt_key_stage = 0
        elif off == SR:
            self.sr &= ~(v & SR_W1C)  # write 1 to clear (RM0090 section 3.9.4)
            self._irq()
        elif off == CR:
            if self.op:
                self.control.stall_until(self.op.end_ps)  # CR access waits for BSY (RM0090 3.9.5)
            if self.cr & CR_LOCK:
                return  # locked: ignored until the KEYR sequence
            new = self.merge(self.cr, value, mask)
            self.cr = new & ~CR_STRT
            if new & CR_STRT:
                self._start_erase(new)
        elif off == OPTCR:
            if self.optcr & 1 and v & 1 == 0 and mask & 1:
                return  # option bytes locked: only OPTLOCK may be written
            if v & 2:
                self.faults.unmodeled_access(self.base + off, "write", "FLASH_OPTCR OPTSTRT (option bytes)")
                return
            self.optcr = self.merge(self.optcr, value, mask) & 0x0FFF_FFEF
        else:
            self.unmodeled(off, "write")

    def _key(self, v: int) -> None:
        if self.lockup or not self.cr & CR_LOCK:
            if self.lockup:
                self.faults.bus_fault(self.base + KEYR, "FLASH_KEYR write after a wrong key sequence")
            return
        if self.key_stage == 0 and v == KEY1:
            self.key_stage = 1
        elif self.key_stage == 1 and v == KEY2:
            self.cr &= ~CR_LOCK
            self.key_stage = 0
        else:
            # "Any wrong sequence will return a bus error and lock up the FLASH_CR register until
            # the next reset" (RM0090 section 3.5.1).
            self.key_stage = 0
            self.lockup = True
            self.faults.bus_fault(self.base + KEYR, f"wrong FLASH_KEYR sequence (wrote 0x{v:08X})")

    def _irq(self) -> None:
        level = bool(self.cr & CR_EOPIE and self.sr & SR_EOP) or \
            bool(self.cr & CR_ERRIE and self.sr & SR_OPERR)
        self.nvic.set_level(FLASH_IRQ, level)

    def _psize(self) -> int:
        return (self.cr >> CR_PSIZE_SHIFT) & 3

    def _timing(self) -> int:
        return 1 if self.timing == "maximum" else 0

    def _error(self, flag: int) -> None:
        self.sr |= flag
        if flag & SR_OPERR:
            self._irq()

    # -- operations -----------------------------------------------------------------------------
    def _start_erase(self, cr: int) -> None:
        if self.sr & SR_PROG_ERRORS:
            self._error(SR_PGSERR)  # a previous error is still flagged: the operation is refused
            return
        ser, mer, pg = cr & CR_SER, cr & CR_MER, cr & CR_PG
        if pg or (ser and mer) or not (ser or mer):
            self._error(SR_PGSERR)
            return
        psize = min(self._psize(), 2)
        col = self._timing()
        if mer:
            if self.wrp_sectors:
                self._error(SR_WRPERR)
                return
            self._begin(FlashOp("mass", 0, 0, 0, 0, FLASH_SIZE), MASS_ERASE_MS[psize][col] * PS_PER_MS)
            return
        snb = (cr >> CR_SNB_SHIFT) & 0xF
        if snb >= len(SECTORS):
            self._error(SR_PGSERR)  # no such sector on a 1 MB part
            return
        if snb in self.wrp_sectors:
            self._error(SR_WRPERR)
            return
        sec = SECTORS[snb]
        dur = ERASE_MS[sec.size][psize][col] * PS_PER_MS
        self._begin(FlashOp("erase", 0, 0, 0, sec.base - FLASH_BASE, sec.size), dur)

    def cpu_write(self, addr: int, size: int, value: int) -> None:
        """A CPU store to the flash array (either mapping)."""
        off = addr & (FLASH_SIZE - 1)
        if self.op:
            self.control.stall_until(self.op.end_ps)
        if self.sr & SR_PROG_ERRORS:
            return  # an earlier error is still flagged (or this is the rest of a split access)
        if self.cr & CR_LOCK or not self.cr & CR_PG or self.cr & (CR_SER | CR_MER):
            # RM0090 section 3.9.4: PGSERR, "write access to the Flash memory ... while the control
            # register has not been correctly configured".
            self._error(SR_PGSERR)
            return
        if size != 1 << self._psize():
            self._error(SR_PGPERR)  # access size differs from PSIZE
            return
        if (off & 0xF) + size > 16:
            self._error(SR_PGAERR)  # not within one 128-bit row
            return
        sector = sector_at(FLASH_BASE + off).number
        if sector in self.wrp_sectors:
            self._error(SR_WRPERR)
            return
        old = int.from_bytes(self.memory.flash_bytes(FLASH_BASE + off, size), "little")
        new = old & value
        if new != value:
            self.faults.strict_violation(
                FLASH_BASE + off, f"programming flash that is not erased at 0x{FLASH_BASE + off:08X}: "
                f"holds 0x{old:0{2 * size}X}, writing 0x{value:0{2 * size}X} (the result would be "
                f"0x{new:0{2 * size}X}, bits only go 1 -> 0)")
        data = new.to_bytes(size, "little")
        duration = PROGRAM_US[self.timing] * PS_PER_US
        self._begin(FlashOp("program", 0, 0, 0, off, size, data), duration)

    def _begin(self, op: FlashOp, duration_ps: int) -> None:
        time = self.time
        self.op_count += 1
        op.number = self.op_count
        op.start_ps = time.now_ps
        op.end_ps = time.now_ps + duration_ps
        op.timer = time.at(op.end_ps, self._finish, f"flash {op.kind}")
        self.op = op
        self.memory.flash_busy(True)
        for fn in self.op_started:
            fn(op)

    def _finish(self) -> None:
        op = self.op
        if op is None:
            return
        self.op = None
        memory = self.memory
        if op.kind == "program":
            memory.write_flash(op.offset, op.data)
        else:
            memory.write_flash(op.offset, bytes([ERASED]) * op.length)
            for fn in self.erased:
                fn(op)
        memory.flash_busy(False)
        if self.cr & CR_EOPIE:
            self.sr |= SR_EOP  # EOP is set only with EOPIE (RM0090 section 3.9.4)
        self._irq()

    def interrupt(self) -> FlashOp | None:
        """Power loss or reset during an operation: leave what a cut leaves (see module doc)."""
        op = self.op
        if op is None:
            return None
        self.op = None
        if op.timer:
            op.timer.cancel()
        memory = self.memory
        rng = random.Random(op.number * 7919 + op.start_ps)
        frac = (self.time.now_ps - op.start_ps) / max(1, op.end_ps - op.start_ps)
        old = memory.flash_bytes(FLASH_BASE + op.offset, op.length)
        if op.kind == "program":
            # Some of the bits that were being cleared are cleared, the others not yet.
            keep = rng.getrandbits(8 * op.length)
            o = int.from_bytes(old, "little")
            target = int.from_bytes(op.data, "little")
            partial = o & ~((o & ~target) & keep)
            memory.write_flash(op.offset, partial.to_bytes(op.length, "little"))
        else:
            # An erase sweeps the sector: a prefix erased, a band partly erased, the rest old data.
            done = int(op.length * min(max(frac, 0.0), 1.0)) & ~3
            band = min(256, op.length - done)
            data = bytearray(old)
            data[:done] = bytes([ERASED]) * done
            for i in range(done, done + band):
                data[i] |= rng.getrandbits(8)
            memory.write_flash(op.offset, bytes(data))
        memory.flash_busy(False)
        return op
