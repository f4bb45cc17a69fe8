"""The STM32 twin as the virtual ESP32's peer: GPIO 5/18/19/23 = SPI2, 27 = READY, 4 = NRST.

    board = Stm32Twin("flash.bin"); board.load_build("build"); board.power_on()
    with VirtualEsp32(TwinPeer(board), board=board) as esp: ...

One SPI call of the ESP32 is one transaction of the twin (NSS low ... high): the bridge clocks a
whole frame with one write_readinto between CS low and CS high (esp32_mpy/hw.py). A fault of the
simulated firmware does not stop the ESP32: it is recorded in `faults`, and the STM32 then looks
dead (READY low, MISO idle), which is what the bridge would see on real hardware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from esp32_twin.peer import GPIO_NRST, GPIO_READY

T = TypeVar("T")


class TwinPeer:
    def __init__(self, board: Any) -> None:
        self.board = board
        self.faults: list[str] = []

    def _guard(self, fn: Callable[..., T], default: T, *args: Any) -> T:
        from stm32_twin import TwinError

        try:
            return fn(*args)
        except TwinError as e:
            self.faults.append(str(e))
            return default

    def spi_transfer(self, tx: bytes, baudrate: int) -> bytes:
        return self._guard(self.board.spi_transfer, b"\xff" * len(tx), tx, baudrate)

    def pin_read(self, gpio: int) -> int | None:
        if gpio == GPIO_READY:
            return self._guard(self.board.pin, 0, "READY")
        if gpio == GPIO_NRST:
            return self._guard(self.board.pin, 1, "NRST")
        return None

    def pin_write(self, gpio: int, level: int | None) -> None:
        if gpio == GPIO_NRST:
            # Open drain: 0 pulls NRST low (reset held), None releases it (the STM32's pull-up).
            self._guard(self.board.set_pin, None, "NRST", 0 if level == 0 else None)

    def advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
        start = float(self.board.now_ms)
        if until == (GPIO_READY, 1):
            if self._guard(self.board.wait_pin, False, "READY", 1, ms):
                return max(0.0, float(self.board.now_ms) - start)  # READY rose (or was high)
        else:
            self._guard(self.board.run, None, ms)
        passed = float(self.board.now_ms) - start
        # A faulted board may not advance its clock; the ESP32's time passes anyway.
        return passed if passed > 0 else ms
