"""GPIO 5, the bridge's CS, is an ESP32 strapping pin that its ROM drives while the ESP32 boots: the
STM32 sees NSS edges without a clock. On the STM32 twin with the real firmware: such edges (the
ESP32 resetting in the middle of a cycle) leave the link usable, the next session starts with INFO
and the update completes."""

from __future__ import annotations

from fota_formats.spec import LAYOUT
from fota_lab.devices import boot_twin
from fota_lab.images import restamp
from fota_lab.master import Master, TwinPort
from stm32_fota.build import BuildResult

PS_PER_US = 1_000_000


def boot_glitches(board: object, pulses: int = 8, low_us: float = 30.0, high_us: float = 20.0) -> None:
    """NSS toggled with SCK idle, as GPIO 5 does while an ESP32 boots (no bytes clocked)."""
    for _ in range(pulses):
        board.set_pin("NSS", 0)                                              # type: ignore[attr-defined]
        board.core.run_until_ps(board.sched.now_ps + int(low_us * PS_PER_US))  # type: ignore[attr-defined]
        board.set_pin("NSS", 1)                                              # type: ignore[attr-defined]
        board.core.run_until_ps(board.sched.now_ps + int(high_us * PS_PER_US))  # type: ignore[attr-defined]


def test_nss_edges_while_the_esp32_boots_leave_the_link_usable(fw_build: BuildResult) -> None:
    board = boot_twin(fw_build.build_dir)
    m = Master(TwinPort(board))
    before = m.info()
    boot_glitches(board)
    board.run(ms=5)                                                          # type: ignore[attr-defined]
    assert m.info()["running_slot"] == before["running_slot"]
    image = restamp((fw_build.build_dir / "slot-b.bin").read_bytes(), (1, 1, 0))
    boot_glitches(board)
    r = m.update(image)
    assert r.outcome == "confirmed", r
    assert board.flash_bytes(LAYOUT.region("slot_b").base, len(image)) == image  # type: ignore[attr-defined]
