"""Synthetic slot images for bridge tests: a valid vector table, an information block, filler."""

from __future__ import annotations

import random

from fota_formats.image import INFO, INFO_OFFSET, finish_image
from fota_formats.spec import IMAGE, LAYOUT


def make_image(slot: int, version: tuple[int, int, int], size: int, build: int = 1) -> bytes:
    """An image file of about `size` bytes linked for `slot`, that validates like a real one."""
    region = LAYOUT.slot_region(slot)
    sp = LAYOUT.sram_base + LAYOUT.sram_size
    raw = bytearray(sp.to_bytes(4, "little") + (region.base + INFO_OFFSET + 0x101).to_bytes(4, "little"))
    raw += bytes(INFO_OFFSET - len(raw))
    c = IMAGE.constants
    raw += INFO.pack(magic=c["IMAGE_INFO_MAGIC"], format=c["IMAGE_FORMAT_VERSION"], slot=slot,
                     load_addr=region.base, ver_major=version[0], ver_minor=version[1],
                     ver_patch=version[2], build=build, image_size=c["IMAGE_SIZE_UNSET"])
    rnd = random.Random(f"{slot}{version}{size}{build}")
    body = max(0, size - len(raw) - IMAGE.structs["image_trailer"].size)
    raw += rnd.randbytes(body)
    return finish_image(bytes(raw), slot)
