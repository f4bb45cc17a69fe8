"""One corpus of corrupted slot images, run through both validators: the Python check
(``fota_formats.image.validate_image``) and the bootloader's C check (``image_validate``, through the
C test runner's ``validate`` command). Each case says which rule must refuse it.

    >>> cases = corpus(make_image(0, "1.0.0"), slot=0)       # doctest: +SKIP
    >>> [c.name for c in cases][:3]                           # doctest: +SKIP
    ['valid', 'erased-info', 'magic-erased-rest-not']

A case whose fault only a file can have (``truncated``, ``trailing``) carries what the bootloader
sees instead: the same bytes in a slot whose remainder is erased.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from fota_formats.image import INFO, INFO_OFFSET, TRAILER_SIZE
from fota_formats.spec import IMAGE, LAYOUT

_C = IMAGE.constants
_TRAILER = IMAGE.structs["image_trailer"]


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    slot: int                  # the slot it is checked for
    fault: str                 # what the Python check says ("ok" when it accepts)
    c_fault: str | None = None  # what the bootloader says, when it differs for a file-only fault

    @property
    def bootloader_fault(self) -> str:
        return self.fault if self.c_fault is None else self.c_fault


def _info_field(name: str) -> tuple[int, str]:
    f = next(f for f in INFO.fields if f.name == name)
    return INFO_OFFSET + f.offset, {1: "<B", 2: "<H", 4: "<I"}[f.size]


def _trailer_field(image_size: int, name: str) -> tuple[int, str]:
    f = next(f for f in _TRAILER.fields if f.name == name)
    return image_size + f.offset, {1: "<B", 2: "<H", 4: "<I"}.get(f.size, "")


def _put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def _flip(data: bytes, off: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def corpus(image: bytes, slot: int, fuzz: int = 200, seed: int = 1) -> list[Case]:
    """The hand-written cases for a valid ``image`` linked for ``slot``, then ``fuzz`` random
    single-byte corruptions of the information block, vectors, body and trailer."""
    size = struct.unpack_from("<I", image, _info_field("image_size")[0])[0]
    other = 1 - slot
    base = LAYOUT.slot_region(slot).base
    sram_end = LAYOUT.sram_base + LAYOUT.sram_size
    info = lambda name: _info_field(name)  # noqa: E731
    trailer = lambda name: _trailer_field(size, name)  # noqa: E731
    erased_info = bytearray(image)
    erased_info[INFO_OFFSET:INFO_OFFSET + INFO.size] = b"\xff" * INFO.size
    cases = [
        Case("valid", image, slot, "ok"),
        Case("erased-info", bytes(erased_info), slot, "erased"),
        Case("magic-erased-rest-not", _put(image, *info("magic"), 0xFFFFFFFF), slot, "bad-magic"),
        Case("withdrawn", _put(image, *info("magic"), _C["IMAGE_INVALIDATED_MAGIC"]), slot, "bad-magic"),
        Case("magic-flipped", _flip(image, info("magic")[0] + 3), slot, "bad-magic"),
        Case("format", _put(image, *info("format"), _C["IMAGE_FORMAT_VERSION"] + 1), slot, "bad-format"),
        Case("other-slot", image, other, "wrong-slot"),
        Case("slot-2", _put(image, *info("slot"), 2), slot, "wrong-slot"),
        Case("load-addr", _put(image, *info("load_addr"), base + 0x200), slot, "bad-load-addr"),
        Case("size-unset", _put(image, *info("image_size"), _C["IMAGE_SIZE_UNSET"]), slot, "bad-size"),
        Case("size-misaligned", _put(image, *info("image_size"), size + 4), slot, "bad-size"),
        Case("size-before-info", _put(image, *info("image_size"), 0x100), slot, "bad-size"),
        Case("size-beyond-limit", _put(image, *info("image_size"), LAYOUT.max_image_size), slot, "bad-size"),
        Case("trailer-magic", _flip(image, trailer("magic")[0]), slot, "bad-trailer"),
        Case("trailer-format", _put(image, *trailer("format"), 9), slot, "bad-trailer"),
        Case("trailer-size", _put(image, *trailer("trailer_size"), TRAILER_SIZE + 8), slot, "bad-trailer"),
        Case("trailer-signed", _put(image, *trailer("sig_type"), 1), slot, "bad-trailer"),
        Case("sp-outside-sram", _put(image, 0, "<I", sram_end + 8), slot, "bad-vectors"),
        Case("sp-misaligned", _put(image, 0, "<I", sram_end - 4), slot, "bad-vectors"),
        Case("reset-not-thumb", _put(image, 4, "<I", struct.unpack_from("<I", image, 4)[0] & ~1), slot,
             "bad-vectors"),
        Case("reset-outside", _put(image, 4, "<I", (base + size + 0x100) | 1), slot, "bad-vectors"),
        Case("body-flipped", _flip(image, size - 9), slot, "bad-hash"),
        Case("build-flipped", _flip(image, info("build")[0]), slot, "bad-hash"),
        Case("digest-flipped", _flip(image, trailer("sha256")[0] + 31), slot, "bad-hash"),
        Case("truncated-trailer", image[:size + 16], slot, "truncated", c_fault="bad-hash"),
        Case("truncated-padding", image[:-1], slot, "truncated", c_fault="ok"),
        Case("truncated-body", image[:size - 64], slot, "truncated", c_fault="bad-trailer"),
        Case("truncated-info", image[:INFO_OFFSET + 8], slot, "truncated", c_fault="bad-load-addr"),
        Case("trailing-bytes", image + b"\x00" * 8, slot, "trailing", c_fault="ok"),
    ]
    rng = random.Random(seed)
    spans = [(0, 8), (INFO_OFFSET, INFO_OFFSET + INFO.size), (INFO_OFFSET + INFO.size, size),
             (size, size + TRAILER_SIZE)]
    for i in range(fuzz):
        lo, hi = spans[i % len(spans)]
        off = rng.randrange(lo, hi)
        mask = rng.randrange(1, 256)
        cases.append(Case(f"fuzz-{i}-0x{off:x}^0x{mask:02x}", _flip(image, off, mask), slot, "?"))
    return cases
