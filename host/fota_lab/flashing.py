"""Program the bootloader and Slot A into the STM32 twin's flash file, as a debugger would a board.

    >>> flash_sim(Path("build"), Path("build/demo/flash.bin"))  # doctest: +SKIP

The flash file is a raw 1 MB image of the flash (``Stm32Twin(flash_file=...)``); every byte but
the two images is erased, so the bootloader finds an empty journal and boots Slot A.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fota_formats.spec import LAYOUT
from stm32_fota.flashing import ERASED, FlashingError, pieces
from stm32_twin import Stm32Twin
from stm32_twin.errors import TwinError


def flash_sim(build_dir: Path, flash_file: Path, log: Callable[[str], None] = print) -> Path:
    """Write the twin's flash file: bootloader and Slot A, every other byte erased (0xFF)."""
    parts = pieces(build_dir)
    try:
        flash_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlashingError(f"Failed to create {flash_file.parent}: {e.strerror}") from None
    try:
        board = Stm32Twin(flash_file)
        try:
            board.restore_flash(bytes([ERASED]) * LAYOUT.flash_size)
            for piece in parts:
                board.load_bin(piece.path, piece.address)
                log(f"flash-stm32: {piece.name}.bin ({piece.path.stat().st_size} bytes) -> "
                    f"0x{piece.address:08X} in {flash_file}")
        finally:
            board.close()
    except TwinError as e:
        raise FlashingError(f"Failed to write the twin's flash file {flash_file}: {e}") from None
    return flash_file
