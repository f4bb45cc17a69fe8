"""The virtual ESP32's peer in the lab: the STM32 twin (``esp32_twin.twin_peer.TwinPeer``), plus the
link timing the demo reports and two hooks the end-to-end fault tests use.

    peer = LabPeer(board)
    peer.times.seconds            # BEGIN sent .. ACTIVATE answered OK, in twin virtual time
    peer.before_transfer = hook   # called with each SPI transaction's bytes before the twin sees them
    peer.power_returns = True     # after a power cut, power the STM32 again at the ESP32's next look

The frames are recognised from the protocol spec (marker, command, status); nothing else of the
traffic is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esp32_twin.twin_peer import TwinPeer
from fota_formats.spec import PROTOCOL

from .timing import LinkTimes, blank_sectors

_BEGIN = PROTOCOL.tables["commands"]["BEGIN"]
_ACTIVATE = PROTOCOL.tables["commands"]["ACTIVATE"]
_RESPONSE = PROTOCOL.constants["RESPONSE_FLAG"]
_OK = PROTOCOL.tables["status"]["OK"]
_MARKER = PROTOCOL.constants["FRAME_MARKER"].to_bytes(2, "little")
_BEGIN_REQ = PROTOCOL.structs["begin_req"]
_HEADER = PROTOCOL.constants["FRAME_HEADER_SIZE"]


class LabPeer(TwinPeer):
    """TwinPeer that notes when BEGIN goes out and when ACTIVATE is answered OK (``times``), and lets
    a test act before each transaction (``before_transfer``) or bring the power back (``power_returns``)."""

    def __init__(self, board: Any) -> None:
        super().__init__(board)
        self.times = LinkTimes()
        self.before_transfer: Callable[[bytes], None] | None = None
        self.power_returns = False

    def _power_back(self) -> None:
        if self.power_returns and not self.board.powered:
            self.board.power_on()

    def pin_read(self, gpio: int) -> int | None:
        self._power_back()
        return super().pin_read(gpio)

    def advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
        self._power_back()
        return super().advance(ms, until)

    def spi_transfer(self, tx: bytes, baudrate: int) -> bytes:
        self._power_back()
        if self.before_transfer is not None:
            self.before_transfer(tx)
        if tx[:2] == _MARKER and tx[2] == _BEGIN:
            self._begin_seen(tx)
        rx = super().spi_transfer(tx, baudrate)
        answered = rx[:2] == _MARKER and rx[2] == _ACTIVATE | _RESPONSE and rx[3] == _OK
        if answered and self.times.activated_ps is None:
            self.times.activated_ps = int(self.board.now_ps)
        return rx

    def _begin_seen(self, tx: bytes) -> None:
        self.times = LinkTimes(begin_ps=int(self.board.now_ps))
        if len(tx) >= _HEADER + _BEGIN_REQ.size:
            fields = _BEGIN_REQ.unpack(tx, _HEADER)
            size, slot = int(fields["image_size"]), int(fields["target_slot"])
            self.times.image_size, self.times.slot = size, slot
            self.times.blank_sectors = blank_sectors(self.board.flash_bytes, size, slot)
