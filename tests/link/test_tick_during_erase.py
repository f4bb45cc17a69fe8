"""The application's clock keeps running while BEGIN erases a sector (real binaries on the twin).

During an erase the CPU waits in a RAM loop; the SysTick handler runs from SRAM through the SRAM
vector table, so millis() counts every millisecond of the erase. A handler left in flash would wait
for the end of the erase and count the whole erase as one tick (its pending bit is not a counter).
"""

from __future__ import annotations

from fota_formats.image import image_counter
from fota_formats.spec import LAYOUT
from fota_lab.master import Master
from fota_testkit.link import SLOT_B, Builds, boot, header_block, master, new_twin
from stm32_twin.board import Stm32Twin
from stm32_twin.flash import FlashOp

PS_PER_MS = 1_000_000_000
MAX_DRIFT_MS = 2   # whole milliseconds on the device, microseconds between handling and READY


def _info_at(twin: Stm32Twin, m: Master) -> tuple[int, float]:
    """INFO's uptime and the virtual time (ms) the device handled the request: READY rises right
    after the request is answered (the response is armed), microseconds after the uptime is read."""
    mark = len(twin.events)
    up = m.info()["uptime_ms"]
    ready = next(ev for ev in twin.events[mark:]
                 if ev.kind == "pin" and ev.data["pin"] == "PB11" and ev.data["level"] == 1)
    return int(up), ready.time_us / 1000


def test_uptime_counts_the_erase_of_a_sector(booted_flash: bytes, builds: Builds) -> None:
    # Slot B's first sector holds old data, so BEGIN has to erase it (128 KB, 1 s typical).
    slot_b = LAYOUT.region("slot_b")
    first = LAYOUT.sectors[slot_b.first_sector]
    flash = bytearray(booted_flash)
    at = first.base - LAYOUT.flash_base
    flash[at:at + 4096] = bytes(range(256)) * 16
    twin: Stm32Twin = new_twin(bytes(flash))
    erases: list[FlashOp] = []
    twin.flash_erased = erases.append  # type: ignore[method-assign]
    try:
        boot(twin)
        m = master(twin)   # one master: its sequence numbers run on
        up0, t0 = _info_at(twin, m)
        image = builds.image(builds.v110, "slot-b")
        # The SHA-256 is checked at VERIFY only: BEGIN needs the information block.
        m.link.begin(SLOT_B, 0, (1, 1, 0, 0), len(image), bytes(32), header_block(image),
                     image_counter(image))
        up1, t1 = _info_at(twin, m)
    finally:
        twin.close()

    assert [op.offset + LAYOUT.flash_base for op in erases] == [first.base], "BEGIN erased no sector"
    erase_ms = (erases[0].end_ps - erases[0].start_ps) / PS_PER_MS
    assert erase_ms >= 900, f"the erase took {erase_ms:.0f} ms"
    elapsed = t1 - t0
    counted = up1 - up0
    print(f"\nerase {erase_ms:.0f} ms; virtual time {elapsed:.1f} ms, uptime advanced {counted} ms")
    assert abs(counted - elapsed) <= MAX_DRIFT_MS, (
        f"the device's uptime advanced {counted} ms over {elapsed:.1f} ms of virtual time "
        f"including a {erase_ms:.0f} ms erase")
