"""The end of a transaction on the twin: NSS rises right after the last byte, while the DMA still
has that byte in flight (RM0090 10.3.17: a stream disabled by software finishes its current item
before EN reads 0). The application must wait for EN = 0 before taking NDTR as the byte count;
read at once, NDTR does not count the last byte yet, the frame is one byte short and fails its CRC.
"""

from __future__ import annotations

from fota_lab.master import TwinPort
from fota_testkit.link import Builds, master, padded_image
from stm32_twin.board import Stm32Twin


class TightPort(TwinPort):
    """A master that releases NSS on the last clock edge (no hold time) and starts the next
    transaction as soon as READY is high: frames back to back."""

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        rx[:] = self.board.spi_transfer(bytes(tx), self.hz, setup_us=0.1, hold_us=0.0)


def test_every_frame_is_taken_when_nss_rises_with_the_last_byte_in_flight(twin: Stm32Twin,
                                                                          builds: Builds) -> None:
    m = master(twin, TightPort(twin))
    for _ in range(3):
        assert m.info()["running_slot"] is not None
    image = padded_image(builds.image(builds.v110, "slot-b"), 32 * 1024)
    r = m.update(image, reset=False)
    assert r.outcome == "activated"
    assert r.transactions >= 12
    # Not one CRC retry: every frame arrived whole, its last byte included.
    assert m.link.retries == 0, f"{m.link.retries} retries"
