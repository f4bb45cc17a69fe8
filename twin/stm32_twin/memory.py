"""The memory map as the CPU sees it (chip.py gives the addresses): the flash array at 0x08000000
and at its boot alias 0, SRAM, CCM (data only), and the read-only page holding the OTP area, the
unique ID and the flash size register.

The flash array is one buffer (FlashMemory), mapped read/execute only: a store to it reaches the
flash interface through Unicorn's write-protection hook (bus.py). While an erase or program runs
the array is mapped with no access at all, so that the first fetch or read stalls the CPU
(single bank, RM0090 3.5.4); ``flash_busy`` arranges it.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE, Uc, UcError

from .chip import (
    CCM_BASE,
    CCM_SIZE,
    FLASH_ALIAS_BASE,
    FLASH_BASE,
    FLASH_SIZE,
    FLASH_SIZE_REG,
    OTP_BASE,
    SRAM_BASE,
    SRAM_SIZE,
    UID_BASE,
    UID_SIZE,
)
from .errors import TwinError

if TYPE_CHECKING:
    from .core import RunControl
    from .flash import FlashMemory

# Unicorn maps whole 1 KB pages: one page from the OTP area holds the UID and the flash size too.
INFO_PAGE = 0x400
PAGE = 0x1000    # restore_flash compares and rewrites the array in pages of this size


class Memory:
    def __init__(self, uc: Uc, array: FlashMemory, uid: bytes, control: RunControl) -> None:
        self.uc = uc
        self.array = array
        self.control = control
        self.flash_closing = False   # an operation runs: close the array (from the next slice on)
        self.flash_closed = False    # the array is mapped without access
        self.stall_retry = False     # a fetch hit the closed array: open it and run the instruction again
        ptr = ctypes.addressof(ctypes.c_char.from_buffer(array.mm))
        uc.mem_map_ptr(FLASH_BASE, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ptr)
        uc.mem_map_ptr(FLASH_ALIAS_BASE, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ptr)
        uc.mem_map(SRAM_BASE, SRAM_SIZE, UC_PROT_ALL)
        uc.mem_map(CCM_BASE, CCM_SIZE, UC_PROT_READ | UC_PROT_WRITE)      # data only: no fetch
        uc.mem_map(OTP_BASE, INFO_PAGE, UC_PROT_READ)
        info = bytearray(b"\xff" * INFO_PAGE)
        info[UID_BASE - OTP_BASE:UID_BASE - OTP_BASE + UID_SIZE] = uid
        size_off = FLASH_SIZE_REG - OTP_BASE
        info[size_off:size_off + 2] = (FLASH_SIZE // 1024).to_bytes(2, "little")
        uc.mem_write(OTP_BASE, bytes(info))

    # -- flash contents -------------------------------------------------------------------------
    @staticmethod
    def in_flash(address: int) -> bool:
        """In the flash array, at either mapping."""
        return address < FLASH_ALIAS_BASE + FLASH_SIZE or FLASH_BASE <= address < FLASH_BASE + FLASH_SIZE

    def flash_bytes(self, address: int, n: int) -> bytes:
        off = address - FLASH_BASE if address >= FLASH_BASE else address - FLASH_ALIAS_BASE
        if not (off >= 0 and off + n <= FLASH_SIZE):
            raise TwinError(f"Failed to read flash: 0x{address:08X}+{n} is outside the flash")
        return bytes(self.array.mm[off:off + n])

    def write_flash(self, offset: int, data: bytes) -> None:
        """Change flash contents (both mappings, so that translated code is invalidated)."""
        self.uc.mem_write(FLASH_BASE + offset, data)
        self.uc.ctl_remove_cache(FLASH_ALIAS_BASE + offset, FLASH_ALIAS_BASE + offset + len(data))

    def snapshot(self) -> bytes:
        return bytes(self.array.mm[:])

    def restore(self, data: bytes) -> None:
        if len(data) != FLASH_SIZE:
            raise TwinError(f"Failed to restore the flash: {len(data)} bytes, expected {FLASH_SIZE}")
        # Only the pages that differ: code translated from the others stays valid.
        mm = self.array.mm
        for off in range(0, FLASH_SIZE, PAGE):
            if mm[off:off + PAGE] != data[off:off + PAGE]:
                self.write_flash(off, data[off:off + PAGE])

    def halfword_before(self, pc: int) -> int:
        """The instruction halfword that ends at ``pc`` (0 when unreadable)."""
        mm = self.array.mm
        if FLASH_BASE + 2 <= pc < FLASH_BASE + FLASH_SIZE:
            off = pc - FLASH_BASE - 2
            return mm[off] | (mm[off + 1] << 8)
        if 2 <= pc < 0xE000_0000:
            try:
                return int.from_bytes(self.uc.mem_read(pc - 2, 2), "little")
            except UcError:
                return 0
        return 0

    # -- flash access while an operation runs ---------------------------------------------------
    def flash_busy(self, busy: bool) -> None:
        """While an operation runs, no CPU access to the array succeeds without stalling.

        Revoking access from inside the store that started the operation crashes Unicorn, so
        that direction ends the slice and takes effect before the next one."""
        self.flash_closing = busy
        if busy and self.control.in_emu:
            self.control.request_stop("flash")
            return
        self.apply_flash_access()

    def apply_flash_access(self) -> None:
        closed = self.flash_closing
        if closed == self.flash_closed:
            return
        self.flash_closed = closed
        prot = UC_PROT_NONE if closed else UC_PROT_READ | UC_PROT_EXEC
        self.uc.mem_protect(FLASH_BASE, FLASH_SIZE, prot)
        self.uc.mem_protect(FLASH_ALIAS_BASE, FLASH_SIZE, prot)

    # -- RAM --------------------------------------------------------------------------------------
    def read(self, address: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(address, n))

    def write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, data)

    def clear_ram(self) -> None:
        """Power-on: SRAM and CCM start cleared."""
        self.uc.mem_write(SRAM_BASE, bytes(SRAM_SIZE))
        self.uc.mem_write(CCM_BASE, bytes(CCM_SIZE))

    @staticmethod
    def in_ram(address: int, n: int) -> bool:
        """Within SRAM or CCM."""
        return (address >= SRAM_BASE and address + n <= SRAM_BASE + SRAM_SIZE) or \
               (address >= CCM_BASE and address + n <= CCM_BASE + CCM_SIZE)

    @staticmethod
    def dma_reachable(address: int, n: int) -> bool:
        """DMA1 reaches SRAM, not CCM (RM0090 2.1: the CCM is on the CPU's D-bus only)."""
        return address >= SRAM_BASE and address + n <= SRAM_BASE + SRAM_SIZE
