"""Helpers of the twin tests: boot the STM32 twin on a build, re-stamp a built slot image."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from fota_formats.image import INFO, INFO_OFFSET, TRAILER_SIZE, finish_image, validate_image
from fota_formats.spec import IMAGE


def restamp(image: bytes, version: tuple[int, int, int], build: int = 5, size: int = 0) -> bytes:
    """The same image with another version in its information block and a matching trailer;
    ``size``: grown to about that many bytes with filler after the code (never executed)."""
    info = validate_image(image)
    raw = bytearray(image[: info.image_size])
    if size > len(raw) + TRAILER_SIZE:
        raw += random.Random(size).randbytes(size - TRAILER_SIZE - len(raw))
    ii = INFO.unpack(raw, INFO_OFFSET)
    ii.update(ver_major=version[0], ver_minor=version[1], ver_patch=version[2], build=build,
              image_size=IMAGE.constants["IMAGE_SIZE_UNSET"])
    raw[INFO_OFFSET:INFO_OFFSET + INFO.size] = INFO.pack(**ii)
    return finish_image(bytes(raw), info.slot)


def boot_twin(build_dir: Path, slot_b: bool = False) -> Any:
    """A powered twin with the bootloader and slot A of `build_dir`, 300 ms after power-on."""
    from stm32_twin.board import Stm32Twin

    board = Stm32Twin()
    board.load_build(build_dir, slot_b=slot_b)
    board.power_on()
    board.run(ms=300)
    return board
