"""The STM32F407VG as ST documents it: its memory map, from RM0090 and DS8626 alone.

RM0090 is the reference manual of the STM32F405/415/407/417/427/437/429/439, DS8626 the datasheet
of the STM32F405xx/STM32F407xx. Each fact names the section or table it comes from. Nothing here
comes from the firmware: the firmware decides where its images live, the chip where its sectors
are, and a test compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024

PART = "STM32F407VG"      # V: 100 pins, G: 1024 KB of flash (DS8626 "Ordering information")

# -- main flash ----------------------------------------------------------------------------------
# RM0090 3.3, Table 5 "Flash module organization (STM32F40x and STM32F41x)": a single bank of
# 4 sectors of 16 KB, 1 of 64 KB and 7 of 128 KB from 0x0800 0000 on a 1 MB part.
FLASH_BASE = 0x0800_0000
SECTOR_SIZES = (16 * KB,) * 4 + (64 * KB,) + (128 * KB,) * 7
# RM0090 2.4 "Boot configuration" (Table 2, BOOT0 = 0): the main flash is also seen at address 0.
FLASH_ALIAS_BASE = 0x0000_0000


@dataclass(frozen=True)
class Sector:
    number: int
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


def _sectors(base: int, sizes: tuple[int, ...]) -> tuple[Sector, ...]:
    out = []
    for number, size in enumerate(sizes):
        out.append(Sector(number, base, size))
        base += size
    return tuple(out)


SECTORS = _sectors(FLASH_BASE, SECTOR_SIZES)
FLASH_SIZE = SECTORS[-1].end - FLASH_BASE   # 1 MB (DS8626 Table 2: 1024 KB for the xG parts)


def sector_at(address: int) -> Sector:
    """The main-flash sector holding ``address`` (at 0x0800 0000, not the boot alias)."""
    for s in SECTORS:
        if s.base <= address < s.end:
            return s
    raise ValueError(f"address 0x{address:08X} is outside the main flash")


# -- information block (RM0090 3.3, Table 5) -----------------------------------------------------
SYSTEM_MEMORY_BASE, SYSTEM_MEMORY_SIZE = 0x1FFF_0000, 30 * KB   # ST's boot loader, read only
OTP_BASE, OTP_SIZE = 0x1FFF_7800, 528                         # 16 blocks of 32 bytes + 16 lock bytes
OPTION_BYTES_BASE, OPTION_BYTES_SIZE = 0x1FFF_C000, 16

# -- device electronic signature (RM0090 chapter 39) ---------------------------------------------
UID_BASE, UID_SIZE = 0x1FFF_7A10, 12        # RM0090 39.1: 96-bit unique device ID
FLASH_SIZE_REG = 0x1FFF_7A22                # RM0090 39.2: flash size in KB, 16 bits
DEV_ID = 0x413                              # RM0090 38.6.1: DBGMCU_IDCODE DEV_ID of the F405/F407

# -- factory calibration in system memory (DS8626 6.3.22 table 70 "Temperature sensor calibration
# values", 6.3.23 table 72 "Internal reference voltage calibration values"): ADC codes taken at
# VDDA = 3.3 V, TS_CAL1 at 30 C and TS_CAL2 at 110 C, 16 bits each.
VREFIN_CAL, TS_CAL1, TS_CAL2 = 0x1FFF_7A2A, 0x1FFF_7A2C, 0x1FFF_7A2E
CAL_VDDA = 3.3
TS_CAL1_C, TS_CAL2_C = 30.0, 110.0
# RM0090 38.6.1 DBGMCU_IDCODE REV_ID of the F40x revisions (ES0182 table 1 names the markings).
REVISIONS = {"A": 0x1000, "Z": 0x1001, "1": 0x1003, "2": 0x1007, "Y": 0x100F, "5": 0x101F}
REV_A = REVISIONS["A"]   # ES0182: "ART Accelerator prefetch queue instruction is not supported"

# -- clocks and flash wait states -----------------------------------------------------------------
# DS8626 6.3.1 table 14 "General operating conditions": fHCLK, fPCLK1, fPCLK2 at most.
HCLK_MAX, PCLK1_MAX, PCLK2_MAX = 168_000_000, 42_000_000, 84_000_000
# RM0090 3.5.1 table 10, VDD 2.7-3.6 V: one more wait state every 30 MHz of HCLK.
HCLK_PER_WAIT_STATE = 30_000_000


def wait_states_needed(hclk_hz: int) -> int:
    """Flash wait states (LATENCY) the HCLK needs at VDD 2.7-3.6 V (RM0090 table 10)."""
    return max(0, -(-hclk_hz // HCLK_PER_WAIT_STATE) - 1)


# -- SRAM (RM0090 2.3.1 "Embedded SRAM", 2.2.2 memory map) ----------------------------------------
SRAM1_BASE, SRAM1_SIZE = 0x2000_0000, 112 * KB
SRAM2_BASE, SRAM2_SIZE = 0x2001_C000, 16 * KB   # right after SRAM1: one contiguous 128 KB
SRAM_BASE, SRAM_SIZE = SRAM1_BASE, SRAM1_SIZE + SRAM2_SIZE
# CCM data RAM: on the CPU's D-bus only, so no instruction fetch and no DMA (RM0090 2.3.1, 2.1).
CCM_BASE, CCM_SIZE = 0x1000_0000, 64 * KB

assert SRAM2_BASE == SRAM1_BASE + SRAM1_SIZE
assert FLASH_SIZE == 1024 * KB
