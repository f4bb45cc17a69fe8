"""Reset and clock control (RM0090 section 7.3) and power control (section 5.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol

from ..chip import HCLK_MAX, PCLK1_MAX, PCLK2_MAX, wait_states_needed
from ..events import PS_PER_US
from .base import Peripheral, SimpleRegs

if TYPE_CHECKING:
    from ..events import VirtualTime
    from ..faults import Faults
    from .misc import Rtc

HSI_HZ = 16_000_000
# Start-up delays the firmware can observe through the ready bits (DS8626 section 6.3):
HSE_STARTUP_PS = 2_000 * PS_PER_US  # tSU(HSE), 8 MHz crystal, typical
PLL_LOCK_PS = 100 * PS_PER_US       # PLL lock time
HSI_READY_PS = 2 * PS_PER_US
# RM0090 7.3.3 SWS: the switch completes a few cycles of both clocks after SW is written, while a
# prescaler takes effect at once; so SW and the prescalers in one store run the old source through
# the new prescalers for this long.
SWITCH_PS = PS_PER_US // 2
LSI_HZ = 32_000                     # RM0090 section 7.2.5: about 32 kHz

# RCC_CSR reset flags (RM0090 section 7.3.21)
CSR_LPWRRSTF = 1 << 31
CSR_WWDGRSTF = 1 << 30
CSR_IWDGRSTF = 1 << 29
CSR_SFTRSTF = 1 << 28
CSR_PORRSTF = 1 << 27
CSR_PINRSTF = 1 << 26
CSR_BORRSTF = 1 << 25
CSR_RMVF = 1 << 24
CSR_FLAGS = 0xFE000000

# Reset cause -> flags. Every internal reset also drives the NRST pin low on this part, so PINRSTF
# is set with the others (RM0090 section 7.1.2, figure 20).
RESET_FLAGS = {
    "power": CSR_PORRSTF | CSR_PINRSTF | CSR_BORRSTF,
    "pin": CSR_PINRSTF,
    "software": CSR_SFTRSTF | CSR_PINRSTF,
    "iwdg": CSR_IWDGRSTF | CSR_PINRSTF,
}

# Offsets (RM0090 section 7.3.24, register map)
CR, PLLCFGR, CFGR, CIR = 0x00, 0x04, 0x08, 0x0C
AHB1RSTR, AHB2RSTR, AHB3RSTR, APB1RSTR, APB2RSTR = 0x10, 0x14, 0x18, 0x20, 0x24
AHB1ENR, AHB2ENR, AHB3ENR, APB1ENR, APB2ENR = 0x30, 0x34, 0x38, 0x40, 0x44
BDCR, CSR = 0x70, 0x74
ENR_NAMES = {"AHB1ENR": AHB1ENR, "AHB2ENR": AHB2ENR, "AHB3ENR": AHB3ENR, "APB1ENR": APB1ENR,
             "APB2ENR": APB2ENR}
# Reset bits of the modeled blocks: register -> {bit: peripheral name}
RESET_BITS = {
    AHB1RSTR: {0: "GPIOA", 1: "GPIOB", 2: "GPIOC", 3: "GPIOD", 4: "GPIOE", 12: "CRC", 21: "DMA1"},
    APB1RSTR: {14: "SPI2", 17: "USART2", 28: "PWR"},
    APB2RSTR: {8: "ADC", 14: "SYSCFG"},
}

CR_HSION, CR_HSIRDY, CR_HSEON, CR_HSERDY, CR_HSEBYP = 1 << 0, 1 << 1, 1 << 16, 1 << 17, 1 << 18
CR_PLLON, CR_PLLRDY = 1 << 24, 1 << 25
CR_RO = CR_HSIRDY | CR_HSERDY | CR_PLLRDY | (1 << 27) | (1 << 29) | 0xFF00  # ready bits, HSICAL
AHB_DIV = {8: 2, 9: 4, 10: 8, 11: 16, 12: 64, 13: 128, 14: 256, 15: 512}
APB_DIV = {4: 2, 5: 4, 6: 8, 7: 16}


class HclkListener(Protocol):
    """A model that counts HCLK cycles (SysTick, DWT): told before and after HCLK changes."""

    def hclk_will_change(self) -> None: ...

    def hclk_changed(self) -> None: ...


class Rcc(Peripheral):
    """The RCC registers and the clock tree they define (SYSCLK, HCLK, PCLK1, PCLK2)."""

    name = "RCC"
    base = 0x40023800
    wakers = frozenset({"rcc ready"})

    def __init__(self, faults: Faults, time: VirtualTime, pwr: Pwr, rtc: Rtc, hse_hz: int) -> None:
        self.time = time
        self.pwr = pwr
        self.rtc = rtc
        self.hse_hz = hse_hz
        self.hclk_listeners: list[HclkListener] = []
        # The blocks behind the reset bits of RESET_BITS, by name (wired once every block exists).
        self.reset_lines: dict[str, Peripheral] = {}
        # FLASH_ACR LATENCY in effect (wired by the board): checked against HCLK at each change.
        self.flash_latency: Callable[[], int] = lambda: 7
        super().__init__(faults)

    def reset(self) -> None:
        self.switch_timer = None
        self.r = {
            CR: 0x0000_0083, PLLCFGR: 0x2400_3010, CFGR: 0, CIR: 0,
            AHB1RSTR: 0, AHB2RSTR: 0, AHB3RSTR: 0, APB1RSTR: 0, APB2RSTR: 0,
            AHB1ENR: 0x0010_0000, AHB2ENR: 0, AHB3ENR: 0, APB1ENR: 0, APB2ENR: 0,
            0x50: 0x7E67_91FF, 0x54: 0xF1, 0x58: 0x1, 0x60: 0x36FE_C9FF, 0x64: 0x0007_5F33,
            0x80: 0, 0x84: 0x2000_3000,
        }
        # Backup domain and reset flags survive a system reset: only power_off clears them.
        if not hasattr(self, "bdcr"):
            self.bdcr = 0
            self.csr_flags = 0

    def power_off(self) -> None:
        self.bdcr = 0
        self.csr_flags = 0
        self.reset()

    # -- clock tree ---------------------------------------------------------------------------
    def sysclk_hz(self) -> int:
        sws = (self.r[CFGR] >> 2) & 3
        if sws == 1:
            return self.hse_hz
        if sws == 2:
            return self.pll_hz()
        return HSI_HZ

    def pll_hz(self) -> int:
        cfg = self.r[PLLCFGR]
        m, n, p = cfg & 0x3F, (cfg >> 6) & 0x1FF, ((cfg >> 16) & 3) * 2 + 2
        src = self.hse_hz if cfg & (1 << 22) else HSI_HZ
        if m < 2 or n < 2:
            return 0
        return src * n // m // p

    def hclk_hz(self) -> int:
        return self.sysclk_hz() // AHB_DIV.get((self.r[CFGR] >> 4) & 0xF, 1)

    def pclk1_hz(self) -> int:
        return self.hclk_hz() // APB_DIV.get((self.r[CFGR] >> 10) & 7, 1)

    def pclk2_hz(self) -> int:
        return self.hclk_hz() // APB_DIV.get((self.r[CFGR] >> 13) & 7, 1)

    def enabled(self, reg: str, bit: int) -> bool:
        return bool(self.r[ENR_NAMES[reg]] >> bit & 1)

    # -- registers ----------------------------------------------------------------------------
    def read(self, off: int) -> int:
        if off == BDCR:
            return self.bdcr
        if off == CSR:
            return self.csr_flags | (self.r.get(CSR, 0) & 1) | ((self.r.get(CSR, 0) & 1) << 1)
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == CR:
            old = self.r[CR]
            new = self.merge(old, value, mask & ~CR_RO) | (old & CR_RO)
            # The PLL cannot be stopped while it clocks the system (RM0090 section 7.3.1).
            if (self.r[CFGR] >> 2) & 3 == 2:
                new |= CR_PLLON
            if (self.r[CFGR] >> 2) & 3 == 1:
                new |= CR_HSEON
            self.r[CR] = new
            self._osc(new, old, CR_HSION, CR_HSIRDY, HSI_READY_PS, True)
            hse_ok = self.hse_hz > 0
            self._osc(new, old, CR_HSEON, CR_HSERDY, HSE_STARTUP_PS, hse_ok)
            pll_src_ok = not self.r[PLLCFGR] & (1 << 22) or bool(new & CR_HSERDY)
            self._osc(new, old, CR_PLLON, CR_PLLRDY, PLL_LOCK_PS, pll_src_ok)
        elif off == PLLCFGR:
            if self.r[CR] & CR_PLLON:
                return  # written only while the PLL is off (RM0090 section 7.3.2)
            self.r[PLLCFGR] = self.merge(self.r[PLLCFGR], value, mask & 0x0F43_7FFF)
        elif off == CFGR:
            new = self.merge(self.r[CFGR], value, mask & ~0xC)
            self._set_cfgr((new & ~0xC) | (self.r[CFGR] & 0xC))
            sw = new & 3
            ready = {0: self.r[CR] & CR_HSIRDY, 1: self.r[CR] & CR_HSERDY, 2: self.r[CR] & CR_PLLRDY}
            if sw != (self.r[CFGR] >> 2) & 3 and ready.get(sw):
                if self.switch_timer is not None:
                    self.switch_timer.cancel()

                def switched() -> None:
                    self.switch_timer = None
                    if self.r[CFGR] & 3 == sw:
                        self._set_cfgr((self.r[CFGR] & ~0xC) | (sw << 2))
                self.switch_timer = self.time.at(self.time.now_ps + SWITCH_PS, switched, "rcc ready")
        elif off in (AHB1RSTR, APB1RSTR, APB2RSTR, AHB2RSTR, AHB3RSTR):
            new = self.merge(self.r[off], value, mask)
            for bit, pname in RESET_BITS.get(off, {}).items():
                if new >> bit & 1 and pname in self.reset_lines:
                    self.reset_lines[pname].reset_line()
            self.r[off] = new
        elif off == BDCR:
            if not self.pwr.dbp:
                return  # backup domain write protected (RM0090 section 5.1.2)
            new = self.merge(self.bdcr, value, mask)
            if new & (1 << 16):  # BDRST: backup domain software reset
                self.rtc.power_off()
                self.bdcr = 0
            lse = 2 if new & 1 else 0  # LSERDY follows LSEON (a 32.768 kHz crystal is fitted)
            self.bdcr = (new & ~2) | lse
        elif off == CSR:
            if value & mask & CSR_RMVF:
                self.csr_flags = 0
            self.r[CSR] = self.merge(self.r.get(CSR, 0), value, mask & 1)
        elif off in self.r:
            self.r[off] = self.merge(self.r[off], value, mask)
        else:
            self.unmodeled(off, "write")

    def _set_cfgr(self, value: int) -> None:
        """A new CFGR (prescalers, or SWS at the end of a switch): HCLK listeners told, the limits
        checked (DS8626 table 14; RM0090 3.5.1 table 10 for the flash wait states)."""
        before = self.hclk_hz()
        for listener in self.hclk_listeners:
            listener.hclk_will_change()
        self.r[CFGR] = value
        if self.hclk_hz() != before:
            for listener in self.hclk_listeners:
                listener.hclk_changed()
        for what, hz, limit in (("HCLK", self.hclk_hz(), HCLK_MAX),
                                ("PCLK1 (APB1)", self.pclk1_hz(), PCLK1_MAX),
                                ("PCLK2 (APB2)", self.pclk2_hz(), PCLK2_MAX)):
            if hz > limit:
                self.faults.strict_violation(self.base + CFGR, f"{what} at {hz / 1e6:g} MHz, above its "
                                             f"{limit / 1e6:g} MHz maximum (DS8626 table 14, RM0090 7.3.3)")
        need = wait_states_needed(self.hclk_hz())
        if self.flash_latency() < need:
            self.faults.strict_violation(self.base + CFGR, f"HCLK {self.hclk_hz() / 1e6:g} MHz with "
                                         f"{self.flash_latency()} flash wait states, {need} needed "
                                         f"(RM0090 3.5.1 table 10)")

    def _osc(self, new: int, old: int, on: int, rdy: int, delay_ps: int, works: bool) -> None:
        if new & on and not old & on and works:
            def ready() -> None:
                if self.r[CR] & on:
                    self.r[CR] |= rdy
            self.time.at(self.time.now_ps + delay_ps, ready, "rcc ready")
        elif not new & on:
            self.r[CR] &= ~rdy


class Pwr(SimpleRegs):
    """PWR_CR and PWR_CSR (RM0090 section 5.4): DBP gates writes to the backup domain."""

    name = "PWR"
    base = 0x40007000
    clock = ("APB1ENR", 28)
    regs: ClassVar[dict[int, tuple[int, int]]] = {0x00: (0x0000_C000, 0x0000_C3FF),
                                                  0x04: (0x0000_0000, 0x0000_0300)}

    @property
    def dbp(self) -> bool:
        return bool(self.r[0x00] & (1 << 8))

    def read(self, off: int) -> int:
        if off == 0x04:
            # VOSRDY (bit 14): the regulator is always ready in the twin.
            return self.r[0x04] | (1 << 14)
        return super().read(off)
