"""USART2 transmit, IWDG, CRC unit, ADC1 temperature sensor and the RTC backup registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..chip import CAL_VDDA, TS_CAL1, TS_CAL1_C, TS_CAL2, TS_CAL2_C, VREFIN_CAL
from ..events import PS_PER_S, Timer
from .base import Peripheral
from .rcc import LSI_HZ

if TYPE_CHECKING:
    from ..core import RunControl
    from ..events import EventLog, VirtualTime
    from ..faults import Faults
    from .rcc import Pwr, Rcc
    from .scs import Nvic


class Usart(Peripheral):
    """USART2 (RM0090 section 30.6), transmitter only: bytes leave at the configured baud rate
    and are collected into log lines. The receiver reads nothing (RXNE stays 0). Interrupts
    (RM0090 section 30.4): the USART2 line (IRQ 38) is high while TXE and TXEIE, or TC and TCIE,
    are both set."""

    name = "USART2"
    base = 0x4000_4400
    wakers = frozenset({"usart byte"})
    clock = ("APB1ENR", 17)
    SR, DR, BRR, CR1, CR2, CR3, GTPR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
    SR_TXE, SR_TC = 1 << 7, 1 << 6
    CR1_UE, CR1_TE, CR1_TXEIE, CR1_TCIE = 1 << 13, 1 << 3, 1 << 7, 1 << 6
    IRQ = 38  # RM0090 table 61

    def __init__(self, faults: Faults, time: VirtualTime, clocks: Rcc, log: EventLog, nvic: Nvic) -> None:
        self.nvic = nvic
        self.time = time
        self.clocks = clocks
        self.log = log
        super().__init__(faults)

    def reset(self) -> None:
        self.r = {self.BRR: 0, self.CR1: 0, self.CR2: 0, self.CR3: 0, self.GTPR: 0}
        self.sr = self.SR_TXE | self.SR_TC
        self.tdr: int | None = None         # byte waiting in the data register
        self.shift_busy_until = 0
        self.timer: Timer | None = None
        self.line = bytearray()
        self._irq()

    def _irq(self) -> None:
        cr1 = self.r[self.CR1]
        level = bool(self.sr & self.SR_TXE and cr1 & self.CR1_TXEIE) or \
            bool(self.sr & self.SR_TC and cr1 & self.CR1_TCIE)
        self.nvic.set_level(self.IRQ, level)

    def char_ps(self) -> int:
        brr = self.r[self.BRR] or 1
        baud = self.clocks.pclk1_hz() // brr  # BRR = fPCLK / baud (RM0090 section 30.3.4)
        bits = 11 if self.r[self.CR1] & (1 << 12) else 10  # start + 8/9 data + stop
        return bits * PS_PER_S // max(1, baud)

    def read(self, off: int) -> int:
        if off == self.SR:
            return self.sr
        if off == self.DR:
            return 0
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == self.SR:
            self.sr &= value | ~(self.SR_TC | (1 << 5))  # TC and RXNE clear by writing 0
            self._irq()
            return
        if off == self.DR:
            if not (self.r[self.CR1] & self.CR1_UE and self.r[self.CR1] & self.CR1_TE):
                return  # transmitter off: nothing leaves the pin
            # Written while TXE = 0 the new byte replaces the waiting one, which is lost.
            self.tdr = value & 0xFF
            self.sr &= ~(self.SR_TXE | self.SR_TC)
            self._pump()
            self._irq()
            return
        if off in self.r:
            self.r[off] = self.merge(self.r[off], value, mask)
            if off == self.CR1:
                self._irq()
            return
        self.unmodeled(off, "write")

    def _pump(self) -> None:
        """Move the data register into the shifter when it is free."""
        now = self.time.now_ps
        if self.tdr is None or self.timer is not None:
            return
        byte, self.tdr = self.tdr, None
        self.sr |= self.SR_TXE
        done = max(now, self.shift_busy_until) + self.char_ps()
        self.shift_busy_until = done

        def shifted() -> None:
            self.timer = None
            self._emit(byte)
            if self.tdr is None:
                self.sr |= self.SR_TC
            self._pump()
            self._irq()

        self.timer = self.time.at(done, shifted, "usart byte")

    def _emit(self, byte: int) -> None:
        if byte == 0x0A:
            text = self.line.decode("utf-8", "replace").rstrip("\r")
            self.line.clear()
            self.log.emit("uart", text)
        else:
            self.line.append(byte)
            if len(self.line) > 4096:
                self._emit(0x0A)


class Iwdg(Peripheral):
    """Independent watchdog (RM0090 section 19.4): a reset when not reloaded in time.

    ``lsi_hz``: this part's LSI, anywhere in 17-47 kHz (DS8626 table 40, fLSI). ``hardware``: the
    option byte WDG_SW is 0, so the watchdog runs from every reset with its reset values (/4, RLR
    0xFFF: 4096 x 4 / fLSI, 0.35-0.96 s) and cannot be stopped (RM0090 19.3.2)."""

    name = "IWDG"
    base = 0x4000_3000
    time_variant = frozenset({0x0C})  # SR: the update flags clear after 5 LSI periods
    KR, PR, RLR, SR = 0x00, 0x04, 0x08, 0x0C

    def __init__(self, faults: Faults, time: VirtualTime, control: RunControl, lsi_hz: int = LSI_HZ) -> None:
        self.time = time
        self.control = control
        self.lsi_hz = lsi_hz
        self.hardware = False
        super().__init__(faults)

    def reset(self) -> None:
        self.pr = 0
        self.rlr = 0xFFF
        self.unlocked = False
        self.running = False
        self.timer: Timer | None = None
        self.busy_until = 0
        self.reload_ps = 0
        if self.hardware:
            self.running = True
            self._reload()

    def period_ps(self) -> int:
        div = 4 << min(self.pr, 6)
        return (self.rlr + 1) * div * PS_PER_S // self.lsi_hz

    def _reload(self) -> None:
        if self.timer:
            self.timer.cancel()
        self.reload_ps = self.time.now_ps
        self.timer = self.time.at(self.time.now_ps + self.period_ps(), self._expire, "iwdg")

    def _expire(self) -> None:
        self.timer = None
        self.control.request_reset("iwdg")

    def read(self, off: int) -> int:
        if off == self.PR:
            return self.pr
        if off == self.RLR:
            return self.rlr
        if off == self.SR:
            # PVU/RVU: an update is in progress for up to 5 LSI periods (RM0090 section 19.4.4).
            return 3 if self.time.now_ps < self.busy_until else 0
        if off == self.KR:
            return 0
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        v = value & mask & 0xFFFF
        if off == self.KR:
            if v == 0xCCCC:
                self.running = True
                self.unlocked = False
                self._reload()
            elif v == 0xAAAA:
                self.unlocked = False
                if self.running:
                    self._reload()
            elif v == 0x5555:
                self.unlocked = True
            else:
                self.unlocked = False
            return
        if off in (self.PR, self.RLR):
            if not self.unlocked:
                return  # write access needs 0x5555 in KR first
            if off == self.PR:
                self.pr = v & 7
            else:
                self.rlr = v & 0xFFF
            self.busy_until = self.time.now_ps + 5 * PS_PER_S // self.lsi_hz
            return
        if off == self.SR:
            return
        self.unmodeled(off, "write")


class Crc(Peripheral):
    """CRC calculation unit (RM0090 section 4): CRC-32 poly 0x04C11DB7, 32-bit words, MSB first."""

    name = "CRC"
    base = 0x4002_3000
    clock = ("AHB1ENR", 12)

    def reset(self) -> None:
        self.crc = 0xFFFF_FFFF
        self.idr = 0

    @staticmethod
    def step(crc: int, word: int) -> int:
        crc ^= word
        for _ in range(32):
            crc = ((crc << 1) ^ 0x04C1_1DB7) if crc & 0x8000_0000 else crc << 1
            crc &= 0xFFFF_FFFF
        return crc

    def read(self, off: int) -> int:
        if off == 0x00:
            return self.crc
        if off == 0x04:
            return self.idr
        if off == 0x08:
            return 0
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == 0x00:
            if mask != 0xFFFF_FFFF:
                self.faults.unmodeled_access(self.base, "write", "CRC_DR written with less than 32 bits")
                return
            self.crc = self.step(self.crc, value)
        elif off == 0x04:
            self.idr = value & mask & 0xFF
        elif off == 0x08:
            if value & mask & 1:
                self.crc = 0xFFFF_FFFF
        else:
            self.unmodeled(off, "write")


class Adc(Peripheral):
    """ADC1 single regular conversions and the common registers (RM0090 sections 13.13, 13.14).

    Channel 16 is the temperature sensor: V = V25 + (T - 25) * Avg_Slope with Avg_Slope = 2.5 mV/C
    and this part's ``v25`` (0.76 V typical, DS8626 table 69); channel 17 is VREFINT (1.21 V
    typical, table 71); 12-bit results against the board's VDDA (3.0 V on the Discovery board:
    its 3 V regulator output through a diode). ``factory_calibration`` is what ST measured at
    3.3 V and stored in system memory (chip.VREFIN_CAL, TS_CAL1, TS_CAL2). ADC2/ADC3 are not
    modeled. The analog world: ``temperature_c`` (the die), ``inputs`` (volts by channel), ``vdda``.
    A broken converter: ``stuck`` (a started conversion never ends, EOC never comes).
    """

    name = "ADC"
    base = 0x4001_2000
    wakers = frozenset({"adc"})
    clock = ("APB2ENR", 8)
    SR, CR1, CR2, SMPR1, SMPR2, SQR1, SQR2, SQR3, DR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x2C, 0x30, 0x34, 0x4C
    CSR, CCR, CDR = 0x300, 0x304, 0x308
    SLOPE, VREFINT = 0.0025, 1.21
    ADCCLK_MAX = 36_000_000   # DS8626 table 66, fADC at VDDA 2.4-3.6 V
    SMP_CYCLES = (3, 15, 28, 56, 84, 112, 144, 480)

    def __init__(self, faults: Faults, time: VirtualTime, clocks: Rcc, temperature_c: float,
                 vdda: float = 3.0, v25: float = 0.76) -> None:
        self.time = time
        self.clocks = clocks
        self.temperature_c = temperature_c
        self.inputs: dict[int, float] = {}
        self.vdda = vdda
        self.v25 = v25
        self.stuck = False
        super().__init__(faults)

    def sensor_volts(self, celsius: float) -> float:
        return self.v25 + (celsius - 25.0) * self.SLOPE

    def factory_calibration(self) -> dict[int, int]:
        """Address -> 16-bit code, as measured at VDDA 3.3 V (DS8626 tables 70 and 72)."""
        def code(v: float) -> int:
            return round(v / CAL_VDDA * 4095)
        return {VREFIN_CAL: code(self.VREFINT), TS_CAL1: code(self.sensor_volts(TS_CAL1_C)),
                TS_CAL2: code(self.sensor_volts(TS_CAL2_C))}

    def reset(self) -> None:
        self.r = {off: 0 for off in range(0x00, 0x50, 4)}
        self.ccr = 0
        self.timer: Timer | None = None

    def raw(self, channel: int) -> int:
        if channel == 16:
            if not self.ccr & (1 << 23):
                return 0  # TSVREFE off: the sensor is not connected
            v = self.sensor_volts(self.temperature_c)
        elif channel == 17:
            if not self.ccr & (1 << 23):
                return 0
            v = self.VREFINT
        else:
            v = self.inputs.get(channel, 0.0)
        return max(0, min(4095, round(v / self.vdda * 4095)))

    def _start(self) -> None:
        if not self.r[self.CR2] & 1 or self.stuck:
            return  # ADON off, or a broken converter
        channel = self.r[self.SQR3] & 0x1F
        smpr = self.SMPR1 if channel >= 10 else self.SMPR2
        smp = (self.r[smpr] >> (3 * (channel % 10))) & 7
        prescale = 2 * (((self.ccr >> 16) & 3) + 1)
        adc_hz = self.clocks.pclk2_hz() // prescale
        if adc_hz > self.ADCCLK_MAX:
            self.faults.strict_violation(self.base + self.CR2, f"ADCCLK at {adc_hz / 1e6:g} MHz, above "
                                         f"{self.ADCCLK_MAX / 1e6:g} MHz (DS8626 table 66; ADC_CCR ADCPRE)")
        cycles = self.SMP_CYCLES[smp] + 12
        self.r[self.SR] |= 1 << 4  # STRT
        if self.timer:
            self.timer.cancel()

        def done() -> None:
            self.timer = None
            self.r[self.DR] = self.raw(channel)
            self.r[self.SR] |= 1 << 1  # EOC
            if self.r[self.CR2] & 2:   # CONT
                self._start()

        self.timer = self.time.at(self.time.now_ps + cycles * PS_PER_S // max(1, adc_hz), done, "adc")

    def read(self, off: int) -> int:
        if off == self.CCR:
            return self.ccr
        if off in (self.CSR, self.CDR):
            return 0
        if off == self.DR:
            self.r[self.SR] &= ~(1 << 1)  # reading DR clears EOC
            return self.r[self.DR]
        if off in self.r:
            return self.r[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == self.CCR:
            self.ccr = self.merge(self.ccr, value, mask) & 0x00C3_EF1F
            return
        if off == self.SR:
            self.r[self.SR] &= value | ~0x3F  # rc_w0
            return
        if off == self.DR or off in (self.CSR, self.CDR):
            return
        if off not in self.r:
            self.unmodeled(off, "write")
            return
        if off >= 0x100:
            self.unmodeled(off, "write")
            return
        new = self.merge(self.r[off], value, mask)
        if off == self.CR2:
            start = new & (1 << 30)
            self.r[off] = new & ~((1 << 30) | (1 << 22))
            if start:
                self._start()
            return
        self.r[off] = new


class Rtc(Peripheral):
    """RTC backup registers BKP0R-BKP19R (RM0090 section 26.6.20). They survive a system reset and
    are lost with power (no VBAT on the twin); writes need PWR_CR DBP. The rest of the RTC is not
    modeled."""

    name = "RTC"
    base = 0x4000_2800
    BKP0 = 0x50

    def __init__(self, faults: Faults, pwr: Pwr) -> None:
        self.pwr = pwr
        super().__init__(faults)

    def reset(self) -> None:
        if not hasattr(self, "bkp"):
            self.bkp = [0] * 20

    def power_off(self) -> None:
        self.bkp = [0] * 20

    def read(self, off: int) -> int:
        if self.BKP0 <= off < self.BKP0 + 80:
            return self.bkp[(off - self.BKP0) // 4]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if self.BKP0 <= off < self.BKP0 + 80:
            if self.pwr.dbp:
                i = (off - self.BKP0) // 4
                self.bkp[i] = self.merge(self.bkp[i], value, mask)
            return
        self.unmodeled(off, "write")
