"""What the virtual ESP32 is wired to: the `Esp32Peer` interface, its GPIO map and a fake peer.

    class MyPeer:                      # anything with these four methods is an Esp32Peer
        def spi_transfer(self, tx: bytes, baudrate: int) -> bytes: ...
        def pin_read(self, gpio: int) -> int | None: ...
        def pin_write(self, gpio: int, level: int | None) -> None: ...
        def advance(self, ms: float, until: tuple[int, int] | None = None) -> float: ...

The wiring follows docs/protocol.md: GPIO 5 = CS (the STM32's NSS), 18/19/23 = SCK/MISO/MOSI,
27 = READY (the STM32's PB11), 4 = NRST (open drain; low holds the STM32 in reset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

GPIO_NRST = 4
GPIO_CS = 5
GPIO_SCK = 18
GPIO_MISO = 19
GPIO_MOSI = 23
GPIO_READY = 27


@runtime_checkable
class Esp32Peer(Protocol):
    """The other end of the virtual ESP32's pins and SPI bus."""

    def spi_transfer(self, tx: bytes, baudrate: int) -> bytes:
        """Clock `tx` out on MOSI while CS is low; returns as many bytes read on MISO."""
        ...

    def pin_read(self, gpio: int) -> int | None:
        """The level the peer drives on `gpio`, or None when it does not drive it."""
        ...

    def pin_write(self, gpio: int, level: int | None) -> None:
        """The ESP32 drives `gpio` to `level`; None releases it (open drain, high impedance)."""
        ...

    def advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
        """Let `ms` of virtual time pass; with `until=(gpio, level)` stop early once the peer
        drives that level. Returns the virtual milliseconds that passed."""
        ...


class FakePeer:
    """A peer for tests without the STM32 twin: records what the ESP32 does, answers SPI with
    `respond(tx)` (default: the bytes sent, as a loopback wire would), READY as set by the test.

    `busy_ms`: the next READY read finds READY low, and it rises `busy_ms` of virtual time later
    (as when the STM32 erases flash)."""

    def __init__(self, respond: Callable[[bytes], bytes] | None = None) -> None:
        self.respond = respond or (lambda tx: bytes(tx))
        self.levels: dict[int, int] = {GPIO_READY: 1}
        self.log: list[tuple[str, object, object]] = []
        self.time_ms = 0.0
        self.ready_rises_at: float | None = None
        self.busy_ms: float | None = None

    def spi_transfer(self, tx: bytes, baudrate: int) -> bytes:
        self.log.append(("spi", bytes(tx), baudrate))
        return self.respond(bytes(tx))

    def pin_read(self, gpio: int) -> int | None:
        if gpio == GPIO_READY and self.busy_ms is not None:
            self.levels[GPIO_READY] = 0
            self.ready_rises_at = self.time_ms + self.busy_ms
            self.busy_ms = None
        return self.levels.get(gpio)

    def pin_write(self, gpio: int, level: int | None) -> None:
        self.log.append(("pin", gpio, level))

    def advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
        """READY goes high at `ready_rises_at` (virtual ms) when a test sets it."""
        start = self.time_ms
        end = start + ms
        rise = self.ready_rises_at
        if rise is not None and rise <= end:
            self.levels[GPIO_READY] = 1
            self.ready_rises_at = None
            if until == (GPIO_READY, 1):
                end = max(start, rise)
        self.time_ms = end
        return end - start
