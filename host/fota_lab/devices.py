"""The lab's two devices: the STM32 twin on a flash file, and the virtual ESP32 wired to it.

    devices = Devices(flash_file, root, on_uart=print)
    devices.start()                   # the twin powered and booted, the virtual ESP32 on a pty
    devices.esp.port                  # /dev/pts/N, for mpremote
    devices.led(), devices.journal()  # what the STM32 shows and has recorded
    devices.stop()

The virtual ESP32's thread free-runs the twin while its REPL is idle: ``locked`` holds the twin
still, and every read of the twin here goes through it. ``boot_twin`` is the twin alone, booted on
a build's images in memory (tests and benchmarks).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fota_formats import journal as journal_format
from fota_formats.spec import LAYOUT

from .errors import LabError

BOOT_MS = 400.0     # the twin's bootloader + application start take ~100 ms of virtual time
WIFI_SSID, WIFI_PASSWORD = "fota-lab", "fota-lab-pw"


@dataclass
class Journal:
    """The newest valid record of the metadata journal (sector 11), decoded for people."""

    seq: int
    active_slot: str           # "A" / "B"
    state: str                 # "confirmed" / "trial"
    attempts_left: int
    last_result: str           # RESULT_* name without the prefix, e.g. "CONFIRMED"
    version: str
    floor: int = 0             # the anti-rollback floor (lowest security counter allowed)


def decode_journal(sector: bytes) -> Journal | None:
    """The newest valid record of a journal sector, or None (empty journal)."""
    rec = journal_format.newest(sector)
    if rec is None:
        return None
    return Journal(rec.seq, rec.slot_name, rec.state_name, rec.attempts_left, rec.result_name,
                   rec.version_text, rec.security_counter)


def boot_twin(build_dir: Path, slot_b: bool = False, run_ms: float = 300.0) -> Any:
    """A powered STM32 twin (flash in memory) with the bootloader and Slot A of ``build_dir``
    (and Slot B with ``slot_b``), ``run_ms`` of virtual time after power-on: the application runs
    and serves the link."""
    from stm32_twin import Stm32Twin

    board = Stm32Twin()
    board.load_build(build_dir, slot_b=slot_b)
    board.power_on()
    board.run(ms=run_ms)
    return board


class Devices:
    """The STM32 twin on ``flash_file`` and the virtual ESP32 (its files and Node log under ``root``).
    ``on_uart`` / ``on_led`` see the STM32's UART lines and LED changes as they happen (called from
    the virtual ESP32's thread: keep them short)."""

    def __init__(self, flash_file: Path, root: Path, on_uart: Callable[[str], None] | None = None,
                 on_led: Callable[[str, bool], None] | None = None) -> None:
        self.flash_file = flash_file
        self.root = root
        self.on_uart = on_uart
        self.on_led = on_led
        self.board: Any = None
        self.esp: Any = None
        self.peer: Any = None
        self.last_led = ""

    @property
    def esp_fs(self) -> Path:
        return self.root / "esp32-fs"

    def start(self) -> None:
        """The STM32 twin on the flash file, powered, and the virtual ESP32 wired to it."""
        from esp32_twin import VirtualEsp32, WifiConfig
        from stm32_twin import Stm32Twin

        from .peer import LabPeer

        if not self.flash_file.is_file():
            raise LabError(f"Failed to start the STM32 twin: {self.flash_file} does not exist "
                           "(flash it first)")
        self.board = Stm32Twin(self.flash_file)
        self.board.listeners.append(self._on_event)
        self.board.power_on()
        self.board.run(ms=BOOT_MS)
        self.peer = LabPeer(self.board)
        self.esp = VirtualEsp32(self.peer, board=self.board, fs_dir=self.esp_fs,
                                wifi=WifiConfig(ssid=WIFI_SSID, password=WIFI_PASSWORD),
                                log_path=self.root / "vesp32-node.log")
        self.esp.start()

    def stop(self) -> None:
        """Stop the virtual ESP32, then close the twin (its flash file keeps what was programmed)."""
        try:
            if self.esp is not None:
                self.esp.stop()
                self.esp = None
        finally:
            if self.board is not None:
                self.board.close()
                self.board = None

    # -- what the STM32 shows ---------------------------------------------------------------------
    def _on_event(self, ev: Any) -> None:
        if ev.kind == "uart" and self.on_uart is not None:
            self.on_uart(str(ev.data))
        elif ev.kind == "led":
            colour, on = ev.data["led"], bool(ev.data["on"])
            if on and colour != self.last_led:
                self.last_led = colour
                if self.on_led is not None:
                    self.on_led(colour, on)
            elif on:
                self.last_led = colour

    def led(self) -> str:
        """The colour of the LED that blinks now (the running slot: A green, B orange)."""
        return self.last_led

    @contextlib.contextmanager
    def locked(self) -> Iterator[Any]:
        """Hold the twin still while the caller reads or changes it."""
        lock = self.esp.lock if self.esp is not None else threading.RLock()
        with lock:
            yield self.board

    def journal(self) -> Journal | None:
        meta = LAYOUT.region("metadata")
        with self.locked() as board:
            return decode_journal(board.flash_bytes(meta.base, meta.size))

    def uart_lines(self) -> list[str]:
        with self.locked() as board:
            return list(board.uart_lines)

    def virtual_s(self) -> float:
        with self.locked() as board:
            return float(board.now_us) / 1e6

    def device_id(self) -> str:
        """The STM32's unique ID as the bridge reports it (hex of the 96-bit UID)."""
        with self.locked() as board:
            return bytes(board.uid).hex()
