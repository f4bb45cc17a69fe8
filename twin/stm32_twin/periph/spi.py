"""SPI2 as a slave (RM0090 section 28.3.3 and 28.5), with the master side as a Python API.

The master clocks byte k of a transaction from t0 + k * T to t0 + (k + 1) * T (T = 8 / f_SCK).
At the start of a byte the slave shifts out what its data register holds (TXE = 1: a byte the
firmware did not supply in time goes out as the stale content, as on the chip) and a TX DMA
request refills it; at the end of the byte the received byte enters the RX buffer, or is lost
with OVR set when RXNE is still 1 (RM0090 section 28.4.8), and an RX DMA request empties it.
With both DMA streams running, byte boundaries are processed in batches of ``DMA_BATCH`` bytes:
the firmware only sees NDTR and the DMA flags change in steps of that size (a few microseconds).
Without DMA every byte boundary is its own event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..events import PS_PER_S, Timer
from .base import Peripheral

if TYPE_CHECKING:
    from ..events import VirtualTime
    from ..faults import Faults
    from .dma import Dma
    from .gpio import GpioPort
    from .scs import Nvic

CR1, CR2, SR, DR, CRCPR, RXCRCR, TXCRCR, I2SCFGR, I2SPR = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20)
SR_RXNE, SR_TXE, SR_OVR, SR_BSY = 1, 2, 1 << 6, 1 << 7
CR1_MSTR, CR1_SPE, CR1_SSI, CR1_SSM, CR1_DFF = 1 << 2, 1 << 6, 1 << 8, 1 << 9, 1 << 11
CR2_RXDMAEN, CR2_TXDMAEN, CR2_ERRIE, CR2_RXNEIE, CR2_TXEIE = 1, 2, 1 << 5, 1 << 6, 1 << 7
SPI2_IRQ = 36
DMA_BATCH = 16
FLOATING = 0xFF  # what the master reads when the slave does not drive MISO
# SPI2 pins (AF5): NSS PB12, SCK PB13, MISO PB14, MOSI PB15
PIN_NSS, PIN_SCK, PIN_MISO, PIN_MOSI = 12, 13, 14, 15


@dataclass
class Transaction:
    tx: bytes
    t0_ps: int
    hz: int
    rx: bytearray = field(default_factory=bytearray)
    boundary: int = 0  # next byte boundary to process (0 .. len(tx))
    timer: Timer | None = None

    def boundary_ps(self, k: int) -> int:
        return self.t0_ps + k * 8 * PS_PER_S // self.hz

    @property
    def done(self) -> bool:
        return self.boundary > len(self.tx)


class Spi2(Peripheral):
    """SPI2, its pins on GPIO port B and its requests to DMA1 (stream 3: RX, stream 4: TX)."""

    name = "SPI2"
    base = 0x4000_3800
    wakers = frozenset({"spi byte", "deadline"})
    clock = ("APB1ENR", 14)

    def __init__(self, faults: Faults, time: VirtualTime, nvic: Nvic, dma: Dma, port: GpioPort) -> None:
        self.time = time
        self.nvic = nvic
        self.dma = dma
        self.port = port
        dma.on_change.append(self.dma_changed)
        super().__init__(faults)

    def reset(self) -> None:
        self.cr1 = 0
        self.cr2 = 0
        self.sr = SR_TXE
        self.rx_buf = 0
        self.tx_buf = 0
        self.crcpr = 7
        self.i2scfgr = 0
        self.i2spr = 2
        self.ovr_armed = False
        self.shifting: int | None = None  # byte being shifted out
        self.xfer: Transaction | None = None
        self.counts = {"overruns": 0, "underruns": 0}

    # -- link state -----------------------------------------------------------------------------
    def _pins_ok(self) -> bool:
        port = self.port
        return all(port.mode(p) == 2 and port.af(p) == 5 for p in (PIN_SCK, PIN_MISO, PIN_MOSI))

    def selected(self) -> bool:
        if not self.cr1 & CR1_SPE or self.cr1 & CR1_MSTR:
            return False
        if self.cr1 & CR1_SSM:
            return not self.cr1 & CR1_SSI
        return self.port.level(PIN_NSS) == 0

    def _irq(self) -> None:
        cr2, sr = self.cr2, self.sr
        level = bool((cr2 & CR2_RXNEIE and sr & SR_RXNE) or (cr2 & CR2_TXEIE and sr & SR_TXE)
                     or (cr2 & CR2_ERRIE and sr & SR_OVR))
        self.nvic.set_level(SPI2_IRQ, level)

    def service_dma(self, last: bool = False) -> None:
        """Serve pending DMA requests: TXE with TXDMAEN, RXNE with RXDMAEN. ``last``: the byte
        received is the last of the transaction (the DMA times its item exactly)."""
        dma = self.dma
        if self.cr2 & CR2_TXDMAEN and self.sr & SR_TXE:
            s = dma.stream_for("SPI2_TX")
            if s is not None:
                self.tx_buf = dma.from_memory(s)
                self.sr &= ~SR_TXE
        if self.cr2 & CR2_RXDMAEN and self.sr & SR_RXNE:
            s = dma.stream_for("SPI2_RX")
            if s is not None:
                dma.to_memory(s, self.rx_buf, exact=last)
                self.sr &= ~SR_RXNE
        self._irq()

    def dma_changed(self) -> None:
        """A DMA stream was enabled or disabled."""
        self.service_dma()
        if self.xfer is not None:
            self._process()

    # -- master side ----------------------------------------------------------------------------
    def begin(self, tx: bytes, hz: int) -> Transaction:
        self.xfer = Transaction(bytes(tx), self.time.now_ps, hz)
        self._process()
        return self.xfer

    def _batchable(self) -> bool:
        """Bytes may be processed in batches: received bytes go to memory by DMA and no SPI
        interrupt is enabled, so the CPU only sees DMA progress (NDTR, flags) at batch ends."""
        return bool(self.cr2 & CR2_RXDMAEN and not self.cr2 & (CR2_RXNEIE | CR2_TXEIE | CR2_ERRIE)
                    and self.dma.stream_for("SPI2_RX"))

    def _process(self) -> None:
        x = self.xfer
        if x is None:
            return
        now = self.time.now_ps
        n = len(x.tx)
        active = self.selected() and self._pins_ok()
        while x.boundary <= n and x.boundary_ps(x.boundary) <= now:
            k = x.boundary
            if 0 < k < n and active and self._bulk(x, now):
                continue
            if k > 0:
                self._byte_end(x, k - 1, active)
            if k < n:
                self._byte_start(active)
            x.boundary += 1
        if x.timer:
            x.timer.cancel()
            x.timer = None
        if x.boundary <= n:
            step = DMA_BATCH if self._batchable() else 1
            k = min(n, x.boundary + step - 1)
            x.timer = self.time.at(x.boundary_ps(k), self._process, "spi byte")

    def _bulk(self, x: Transaction, now: int) -> bool:
        """Boundaries k .. k + m - 1 at once in a DMA steady state: each ends byte j - 1 (the RX
        stream stores it) and starts byte j: the data register goes out and the TX stream refills
        it, or, with no TX stream serving, the stale data register goes out again (underrun).
        Only while the streams keep more than m items, so their flags change in the per-byte path."""
        if self.sr & (SR_RXNE | SR_OVR) or not self.cr2 & CR2_RXDMAEN:
            return False
        dma = self.dma
        rx_s = dma.stream_for("SPI2_RX")
        if rx_s is None or not rx_s.cr & (1 << 10):  # MINC
            return False
        tx_s = dma.stream_for("SPI2_TX") if self.cr2 & CR2_TXDMAEN else None
        if tx_s is not None and (self.sr & SR_TXE or not tx_s.cr & (1 << 10)):
            return False
        if tx_s is None and not self.sr & SR_TXE:
            return False
        k = x.boundary
        last = k
        while last + 1 < len(x.tx) and x.boundary_ps(last + 1) <= now:
            last += 1
        m = min(last - k + 1, rx_s.ndtr - 1, tx_s.ndtr - 1 if tx_s else 1 << 30)
        if m < 2:
            return False
        dma.bulk_to_memory(rx_s, x.tx[k - 1:k - 1 + m])
        x.rx.append(self.shifting if self.shifting is not None else FLOATING)
        if tx_s is not None:
            sent = dma.bulk_from_memory(tx_s, m)
            x.rx += bytes([self.tx_buf]) + sent[:m - 2]
            # The byte that starts at boundary k + m - 1 is sent[m - 2]; the data register now
            # holds sent[m - 1] for the next one.
            self.shifting = sent[m - 2]
            self.tx_buf = sent[m - 1]
        else:
            x.rx += bytes([self.tx_buf]) * (m - 1)
            self.shifting = self.tx_buf
            self.counts["underruns"] += m
        self.rx_buf = x.tx[k - 2 + m]
        x.boundary += m
        return True

    def _byte_start(self, active: bool) -> None:
        if not active:
            self.shifting = None
            return
        if self.sr & SR_TXE:
            self.counts["underruns"] += 1
        self.shifting = self.tx_buf
        self.sr |= SR_TXE | SR_BSY
        self.service_dma()

    def _byte_end(self, x: Transaction, k: int, active: bool) -> None:
        x.rx.append(FLOATING if self.shifting is None or not active else self.shifting)
        self.shifting = None
        if not active:
            return
        if self.sr & SR_RXNE:
            self.sr |= SR_OVR  # the new byte is lost
            self.counts["overruns"] += 1
        else:
            self.rx_buf = x.tx[k]
            self.sr |= SR_RXNE
        self.sr &= ~SR_BSY
        self.service_dma(last=k == len(x.tx) - 1)

    def end(self) -> bytes:
        x = self.xfer
        self.xfer = None
        if x is None:
            return b""
        if x.timer:
            x.timer.cancel()
        return bytes(x.rx)

    # -- registers ------------------------------------------------------------------------------
    def read(self, off: int) -> int:
        if off == SR:
            v = self.sr
            if self.ovr_armed:
                self.sr &= ~SR_OVR  # OVR clears with a DR read followed by an SR read
                self.ovr_armed = False
                self._irq()
            return v
        if off == DR:
            self.sr &= ~SR_RXNE
            self.ovr_armed = bool(self.sr & SR_OVR)
            self._irq()
            return self.rx_buf
        regs = {CR1: self.cr1, CR2: self.cr2, CRCPR: self.crcpr, RXCRCR: 0, TXCRCR: 0,
                I2SCFGR: self.i2scfgr, I2SPR: self.i2spr}
        if off in regs:
            return regs[off]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        if off == DR:
            self.tx_buf = value & (0xFFFF if self.cr1 & CR1_DFF else 0xFF)
            self.sr &= ~SR_TXE
            self._irq()
        elif off == CR1:
            new = self.merge(self.cr1, value, mask) & 0xFFFF
            if new & CR1_MSTR or new & CR1_DFF:
                self.faults.unmodeled_access(self.base + off, "write",
                                             "SPI2_CR1: only the 8-bit slave mode is modeled")
                return
            self.cr1 = new
        elif off == CR2:
            self.cr2 = self.merge(self.cr2, value, mask) & 0xF7
            self.service_dma()
        elif off == SR:
            self.sr &= ~(~value & mask & (1 << 4))  # CRCERR is rc_w0
        elif off == CRCPR:
            self.crcpr = value & mask & 0xFFFF
        elif off == I2SCFGR:
            if value & mask & (1 << 11):
                self.faults.unmodeled_access(self.base + off, "write", "SPI2 I2S mode")
                return
            self.i2scfgr = self.merge(self.i2scfgr, value, mask)
        elif off == I2SPR:
            self.i2spr = self.merge(self.i2spr, value, mask)
        else:
            self.unmodeled(off, "write")
