"""DMA1 (RM0090 section 10.5), peripheral <-> memory streams driven by SPI2 requests.

Only the requests the firmware uses are wired: stream 3 channel 0 (SPI2_RX) and stream 4
channel 0 (SPI2_TX). Enabling any other stream/channel pair, memory-to-memory mode, FIFO packing
or a memory address the DMA cannot reach (CCM) is reported in strict mode.

An item is not done when the peripheral's request is taken: the DMA reads the data register,
then writes the memory, and NDTR counts the item once the write is done. For a
peripheral-to-memory stream the twin keeps each item in flight for ``ITEM_CYCLES`` HCLK cycles
after the DMA took it: NDTR reads one more meanwhile, and the item that ends a normal-mode
transfer ends it (NDTR 0, EN cleared by hardware, TCIF) only then. Clearing EN is not immediate
either (RM0090 section 10.3.17, step 1 of the stream configuration procedure: EN is read back
until it is 0, because the current transfer is finished first; section 10.5.5, EN of DMA_SxCR):
with an item in flight EN keeps reading 1 until the item is done, then EN reads 0, NDTR counts
the item and TCIF is set. Software that clears EN and takes NDTR at once, with an item in flight,
counts one item too few. For the last byte of an SPI transaction a timer at the end of the item
bounds the CPU's slice, so that the window is measured in the instructions the CPU runs meanwhile
(one per HCLK cycle), not in slices.
Memory-to-peripheral items (SPI2 TX) are done at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..events import PS_PER_S
from .base import Peripheral

if TYPE_CHECKING:
    from ..events import Timer, VirtualTime
    from ..faults import Faults
    from ..memory import Memory
    from .rcc import Rcc
    from .scs import Nvic

LISR, HISR, LIFCR, HIFCR = 0x00, 0x04, 0x08, 0x0C
STREAM_BASE, STREAM_STRIDE = 0x10, 0x18
SCR, SNDTR, SPAR, SM0AR, SM1AR, SFCR = 0x0, 0x4, 0x8, 0xC, 0x10, 0x14
CR_EN, CR_HTIE, CR_TCIE, CR_TEIE, CR_CIRC, CR_MINC = 1, 1 << 3, 1 << 4, 1 << 2, 1 << 8, 1 << 10
FLAG_SHIFT = (0, 6, 16, 22)  # stream n % 4 -> bit offset of its flags in LISR/HISR
FEIF, DMEIF, TEIF, HTIF, TCIF = 1, 4, 8, 16, 32
STREAM_IRQ = (11, 12, 13, 14, 15, 16, 17, 47)
WIRED = {(3, 0): "SPI2_RX", (4, 0): "SPI2_TX"}
# How long an SPI2 item stays in flight, in HCLK cycles (the DMA runs on the AHB clock), from the
# DMA taking the request (RXNE falls) until its memory write is done and NDTR counts it. ST gives
# no figure: it depends on the arbitration with the other stream and on the CPU's accesses to the
# same SRAM (exception stacking). Uncontended it is some 10-20 cycles (an APB1 read through the
# AHB/APB bridge at PCLK1 = HCLK / 4, then the SRAM write); the twin takes a pessimistic 34 cycles
# (200 ns at 168 MHz), so that a firmware relying on the DMA being faster than its own interrupt
# handler shows the race on the twin. At 168 MHz a master holding NSS low for a microsecond after
# the last byte never finds an item in flight.
ITEM_CYCLES = 34


class Stream:
    def __init__(self, n: int) -> None:
        self.n = n
        self.cr = 0
        self.ndtr = 0
        self.par = 0
        self.m0ar = 0
        self.m1ar = 0
        self.fcr = 0x21
        self.index = 0  # items transferred since enable
        self.initial = 0
        self.item_done_ps = 0     # the last peripheral-to-memory item is done then
        self.item: Timer | None = None  # the timer at item_done_ps, when one is needed
        self.item_counted = True  # the item in flight is already in ndtr (NDTR reads one more)
        self.ending = False       # EN cleared by software, or the last item: ends with the item

    @property
    def enabled(self) -> bool:
        return bool(self.cr & CR_EN)

    @property
    def channel(self) -> int:
        return (self.cr >> 25) & 7


class Dma(Peripheral):
    """DMA1. ``memory`` is what its AHB master port reaches; ``on_change`` are the peripherals whose
    requests it serves, told when a stream is enabled or disabled."""

    name = "DMA1"
    base = 0x4002_6000
    wakers = frozenset({"spi byte", "dma item"})
    clock = ("AHB1ENR", 21)

    def __init__(self, faults: Faults, time: VirtualTime, nvic: Nvic, memory: Memory, clocks: Rcc) -> None:
        self.time = time
        self.clocks = clocks
        self.nvic = nvic
        self.memory = memory
        self.on_change: list[Callable[[], None]] = []
        super().__init__(faults)

    def reset(self) -> None:
        for s in getattr(self, "streams", ()):
            if s.item is not None:
                s.item.cancel()
        self.streams = [Stream(n) for n in range(8)]
        self.flags = [0] * 8

    def stream_for(self, request: str) -> Stream | None:
        """The enabled stream serving a request ('SPI2_RX' / 'SPI2_TX'), if any."""
        n = 3 if request == "SPI2_RX" else 4
        s = self.streams[n]
        if s.enabled and not s.ending and WIRED.get((n, s.channel)) == request and s.ndtr > 0:
            return s
        return None

    def _mem_addr(self, s: Stream) -> int:
        return s.m0ar + (s.index if s.cr & CR_MINC else 0)

    def to_memory(self, s: Stream, byte: int, exact: bool = True) -> None:
        """One peripheral-to-memory item (SPI2 RX). ``exact``: its end bounds the CPU slice (see
        ``_in_flight``)."""
        self.memory.write(self._mem_addr(s), bytes([byte]))
        if s.ndtr == 1 and not s.cr & CR_CIRC:
            # The last item of a normal-mode transfer: the stream ends when it is done (NDTR 0, EN
            # cleared by hardware, TCIF; RM0090 10.5.5), not when the DMA takes the request.
            s.ending = True
            self._in_flight(s, counted=False, timer=True)
            return
        self._advance(s)
        self._in_flight(s, counted=True, timer=exact)

    def from_memory(self, s: Stream) -> int:
        """One memory-to-peripheral item (SPI2 TX)."""
        byte = self.memory.read(self._mem_addr(s), 1)[0]
        self._advance(s)
        return byte

    def bulk_to_memory(self, s: Stream, data: bytes) -> None:
        """len(data) peripheral-to-memory items at once (len(data) < NDTR, MINC set)."""
        self.memory.write(self._mem_addr(s), data)
        self._advance(s, len(data))
        self._in_flight(s, counted=True, timer=False)

    def _in_flight(self, s: Stream, counted: bool, timer: bool) -> None:
        """The item just taken is done ``ITEM_CYCLES`` HCLK cycles from now. ``counted``: it is
        already in ``s.ndtr`` (NDTR reads one more until then); otherwise it is the last one and
        is counted when done. ``timer``: end the CPU slice when it is done, so that the window is
        exact. SPI2 asks for it on the last byte of a transaction, which an NSS edge may follow at
        once; for the other bytes the window is only checked against the time the CPU's slice
        started (a timer per byte would cost a slice per byte)."""
        if s.item is not None:
            s.item.cancel()
            s.item = None
        s.item_counted = counted
        s.item_done_ps = self.time.now_ps + ITEM_CYCLES * PS_PER_S // self.clocks.hclk_hz()
        if timer:
            self._item_timer(s)

    def _item_timer(self, s: Stream) -> None:
        s.item = self.time.at(s.item_done_ps, lambda: self._item_done(s), "dma item")

    def _ndtr(self, s: Stream) -> int:
        """NDTR as software reads it: an item in flight is not counted yet."""
        in_flight = self.time.now_ps < s.item_done_ps and s.item_counted
        return s.ndtr + 1 if in_flight and s.ndtr < s.initial else s.ndtr

    def _item_done(self, s: Stream) -> None:
        s.item = None
        if not s.ending:
            return
        s.ending = False
        if not s.item_counted:
            self._advance(s)              # the last item: NDTR 0, EN cleared by hardware, TCIF
        else:
            s.cr &= ~CR_EN                # EN cleared by software: the stream stops now
            self._flag(s, TCIF)
        self._changed()

    def bulk_from_memory(self, s: Stream, n: int) -> bytes:
        """n memory-to-peripheral items at once (n < NDTR, MINC set)."""
        data = self.memory.read(self._mem_addr(s), n)
        self._advance(s, n)
        return data

    def _advance(self, s: Stream, n: int = 1) -> None:
        before = s.ndtr
        s.index += n
        s.ndtr -= n
        half = s.initial // 2
        if s.ndtr <= half < before:
            self._flag(s, HTIF)
        if s.ndtr == 0:
            if s.cr & CR_CIRC:
                s.ndtr = s.initial
                s.index = 0
            else:
                s.cr &= ~CR_EN  # end of a normal-mode transfer disables the stream
            self._flag(s, TCIF)

    def _flag(self, s: Stream, flag: int) -> None:
        self.flags[s.n] |= flag
        self._irq(s)

    def _irq(self, s: Stream) -> None:
        ie = ((s.cr & CR_TCIE and self.flags[s.n] & TCIF) or (s.cr & CR_HTIE and self.flags[s.n] & HTIF)
              or (s.cr & CR_TEIE and self.flags[s.n] & TEIF))
        self.nvic.set_level(STREAM_IRQ[s.n], bool(ie))

    def _changed(self) -> None:
        for fn in self.on_change:
            fn()

    def _check(self, s: Stream) -> bool:
        faults = self.faults
        where = f"DMA1 stream {s.n}"
        if (s.n, s.channel) not in WIRED:
            faults.unmodeled_access(
                self.base + STREAM_BASE + STREAM_STRIDE * s.n, "write",
                f"{where} channel {s.channel}: only stream 3/4 channel 0 (SPI2) are modeled")
            return False
        dirn = (s.cr >> 6) & 3
        want = 0 if s.n == 3 else 1
        psize, msize = (s.cr >> 11) & 3, (s.cr >> 13) & 3
        if dirn != want or psize or msize or s.cr & (1 << 18) or s.fcr & 4:
            kind = "peripheral-to-memory" if want == 0 else "memory-to-peripheral"
            faults.unmodeled_access(self.base + STREAM_BASE + STREAM_STRIDE * s.n, "write",
                                    f"{where}: only byte-wide {kind} direct-mode transfers without double "
                                    "buffering are modeled")
            return False
        if s.par != 0x4000_380C:
            faults.unmodeled_access(s.par, "write", f"{where}: peripheral address is not SPI2_DR")
            return False
        if not self.memory.dma_reachable(s.m0ar, s.ndtr):
            faults.unmodeled_access(s.m0ar, "write",
                                    f"{where}: memory 0x{s.m0ar:08X} (+{s.ndtr}) is not reachable by DMA1")
            return False
        return True

    def read(self, off: int) -> int:
        if off in (LISR, HISR):
            first = 0 if off == LISR else 4
            return sum(self.flags[first + k] << FLAG_SHIFT[k] for k in range(4))
        if off in (LIFCR, HIFCR):
            return 0
        if STREAM_BASE <= off < STREAM_BASE + 8 * STREAM_STRIDE:
            s = self.streams[(off - STREAM_BASE) // STREAM_STRIDE]
            reg = (off - STREAM_BASE) % STREAM_STRIDE
            return {SCR: s.cr, SNDTR: self._ndtr(s), SPAR: s.par, SM0AR: s.m0ar, SM1AR: s.m1ar,
                    SFCR: s.fcr | (0x20 if s.fcr & 4 == 0 else 0)}[reg]
        return self.unmodeled(off, "read")

    def write(self, off: int, value: int, mask: int) -> None:
        v = value & mask
        if off in (LIFCR, HIFCR):
            first = 0 if off == LIFCR else 4
            for k in range(4):
                self.flags[first + k] &= ~((v >> FLAG_SHIFT[k]) & 0x3D)
                self._irq(self.streams[first + k])
            return
        if off in (LISR, HISR):
            return
        if not STREAM_BASE <= off < STREAM_BASE + 8 * STREAM_STRIDE:
            self.unmodeled(off, "write")
            return
        s = self.streams[(off - STREAM_BASE) // STREAM_STRIDE]
        reg = (off - STREAM_BASE) % STREAM_STRIDE
        if reg == SCR:
            new = self.merge(s.cr, value, mask)
            if s.enabled:
                if not new & CR_EN and self.time.now_ps < s.item_done_ps:
                    # RM0090 10.3.17 (stream configuration procedure, step 1) and 10.5.5 (DMA_SxCR
                    # EN): clearing EN is not immediate; the current item is transferred first and
                    # EN reads 1 until then. NDTR counts that item, and TCIF is set, at that time.
                    s.cr = (s.cr & ~0x1E) | (new & 0x1E)
                    s.ending = True
                    if s.item is None:
                        self._item_timer(s)
                    self._irq(s)
                elif not new & CR_EN:
                    # Disabling a running stream with no item in flight ends it at once; TCIF is
                    # set (RM0090 section 10.3.17).
                    s.cr = new
                    self._flag(s, TCIF)
                    self._changed()
                else:
                    s.cr = (s.cr & ~0x1E) | (new & 0x1E)  # only the interrupt enables change
                    self._irq(s)
                return
            s.cr = new & 0x0FEF_FFFF
            if new & CR_EN:
                if self.flags[s.n] & (TCIF | HTIF | TEIF):
                    s.cr &= ~CR_EN  # RM0090 10.5.5: flags of the stream must be cleared before EN
                    self.faults.strict_violation(self.base + off,
                                                 f"DMA1 stream {s.n} enabled with its event flags set")
                    return
                if not self._check(s):
                    s.cr &= ~CR_EN
                    return
                s.index = 0
                s.initial = s.ndtr
                self._changed()
            self._irq(s)
            return
        if s.enabled:
            return  # address and count registers are read-only while the stream runs
        if reg == SNDTR:
            s.ndtr = v & 0xFFFF
        elif reg == SPAR:
            s.par = v
        elif reg == SM0AR:
            s.m0ar = v
        elif reg == SM1AR:
            s.m1ar = v
        elif reg == SFCR:
            s.fcr = self.merge(s.fcr, value, mask) & 0x87
