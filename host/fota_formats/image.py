"""Slot image files: parse, finish (the post-link step) and validate, as the bootloader does.

    >>> from fota_formats.image import read_image
    >>> info = read_image("build/slot-b.bin")           # doctest: +SKIP
    >>> info.slot_name, info.version_str, info.file_size  # doctest: +SKIP
    ('B', '1.0.0', 10376)

An image file is what a slot holds: the linked binary from the slot base (vector table, image
information block at ``IMAGE_INFO_OFFSET``, code and data), padded with 0xFF to a multiple of
``IMAGE_ALIGN``, followed by the trailer with the SHA-256 of everything before it. The layout is
defined once in ``spec/image.toml`` (docs/image-format.md); this module only reads it from
:data:`fota_formats.spec.IMAGE`.

:func:`validate_image` applies the same rules, in the same order, as the bootloader's
``image_validate()`` (stm32/lib/image.c): information block, size, trailer, vectors, SHA-256.
So the release tooling refuses what the device would refuse, and it names the field and the values
found and expected in each message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ImageError
from .spec import IMAGE, LAYOUT, Region

_C = IMAGE.constants
INFO = IMAGE.structs["image_info"]
TRAILER = IMAGE.structs["image_trailer"]
INFO_OFFSET: int = _C["IMAGE_INFO_OFFSET"]
INFO_SIZE: int = INFO.size
TRAILER_SIZE: int = TRAILER.size
ALIGN: int = _C["IMAGE_ALIGN"]
SLOTS: dict[int, str] = {_C["SLOT_A"]: "A", _C["SLOT_B"]: "B"}
_SIZE_FIELD_OFFSET = next(f.offset for f in INFO.fields if f.name == "image_size")
_VERSION_RE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


def _field_max(struct_name: str, field: str) -> int:
    f = next(f for f in IMAGE.structs[struct_name].fields if f.name == field)
    return (1 << (8 * f.size)) - 1


def _erased(trailer_field: str) -> bytes:
    """0xFF bytes the size of a trailer byte-array field (left as erased flash)."""
    return b"\xff" * next(f.size for f in TRAILER.fields if f.name == trailer_field)


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``, within the widths of the information block's fields."""
    m = _VERSION_RE.fullmatch(text.strip())
    if not m:
        raise ImageError(f"Failed to parse version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.0.0")
    parts = tuple(int(x) for x in m.groups())
    for name, value in zip(("major", "minor", "patch"), parts, strict=True):
        limit = _field_max("image_info", f"ver_{name}")
        if value > limit:
            raise ImageError(f"Failed to parse version {text!r}: {name} {value} exceeds {limit}")
    return parts[0], parts[1], parts[2]


def check_build_number(build_number: int) -> int:
    limit = _field_max("image_info", "build")
    if not 0 <= build_number <= limit:
        raise ImageError(f"Failed to use build number {build_number}: must be 0..{limit}")
    return build_number


def slot_limit(slot: int) -> int:
    """Largest file (image + trailer) that slot ``slot`` accepts: the slot or 256 KB, the smaller."""
    return min(LAYOUT.slot_region(slot).size, LAYOUT.max_image_size)


@dataclass(frozen=True)
class ImageInfo:
    """A validated image: what its information block and trailer say."""

    slot: int
    load_addr: int
    version: tuple[int, int, int]
    build: int
    image_size: int          # ii_image_size: bytes before the trailer
    sha256: bytes            # it_sha256: hash of [0, image_size)
    file_sha256: bytes       # hash of the whole file (image + trailer): what BEGIN and manifests carry
    sig_type: int

    @property
    def file_size(self) -> int:
        return self.image_size + TRAILER_SIZE

    @property
    def slot_name(self) -> str:
        return SLOTS[self.slot]

    @property
    def region(self) -> Region:
        return LAYOUT.slot_region(self.slot)

    @property
    def version_str(self) -> str:
        return ".".join(str(v) for v in self.version)

    def describe(self) -> str:
        return (f"slot {self.slot_name} v{self.version_str}+{self.build}, {self.file_size} bytes, "
                f"sha256 {self.file_sha256.hex()[:16]}...")


def unpack_info(data: bytes | bytearray | memoryview, name: str = "image") -> dict[str, Any]:
    """The raw fields of the information block (no checks beyond the length)."""
    if len(data) < INFO_OFFSET + INFO_SIZE:
        raise ImageError(f"{name}: {len(data)} bytes, too short for the information block "
                         f"at 0x{INFO_OFFSET:X} ({INFO_SIZE} bytes)", "truncated")
    return INFO.unpack(data, INFO_OFFSET)


def _check_info(info: dict[str, Any], slot: int | None, name: str, erased: bool = False) -> int:
    """Check the information block (``erased``: all its bytes are 0xFF); return its slot."""
    def fail(msg: str, fault: str) -> ImageError:
        return ImageError(f"{name}: {msg}", fault)

    magic = info["magic"]
    if erased:
        raise fail(f"no image: the information block at 0x{INFO_OFFSET:X} is erased (0xFF)", "erased")
    if magic != _C["IMAGE_INFO_MAGIC"]:
        if magic == _C["IMAGE_INVALIDATED_MAGIC"]:
            raise fail("image withdrawn: ii_magic is 0x00000000", "bad-magic")
        raise fail(f"ii_magic is 0x{magic:08X}, expected 0x{_C['IMAGE_INFO_MAGIC']:08X}", "bad-magic")
    if info["format"] != _C["IMAGE_FORMAT_VERSION"]:
        raise fail(f"ii_format is {info['format']}, expected {_C['IMAGE_FORMAT_VERSION']}", "bad-format")
    ii_slot = info["slot"]
    if ii_slot not in SLOTS:
        raise fail(f"ii_slot is {ii_slot}, expected {' or '.join(str(s) for s in SLOTS)}", "wrong-slot")
    if slot is not None and ii_slot != slot:
        raise fail(f"ii_slot is {ii_slot} (slot {SLOTS[ii_slot]}), expected {slot} (slot {SLOTS[slot]}): "
                   f"the image is linked for the other slot", "wrong-slot")
    region = LAYOUT.slot_region(ii_slot)
    if info["load_addr"] != region.base:
        raise fail(f"ii_load_addr is 0x{info['load_addr']:08X}, expected 0x{region.base:08X} "
                   f"(base of {region.name})", "bad-load-addr")
    return int(ii_slot)


def _check_size(image_size: int, slot: int, name: str) -> None:
    limit = slot_limit(slot)
    if image_size == _C["IMAGE_SIZE_UNSET"]:
        raise ImageError(f"{name}: ii_image_size is unset (0x{image_size:08X}): "
                         f"the post-link step did not run", "bad-size")
    if image_size % ALIGN:
        raise ImageError(f"{name}: ii_image_size {image_size} is not a multiple of {ALIGN}", "bad-size")
    if image_size < INFO_OFFSET + INFO_SIZE:
        raise ImageError(f"{name}: ii_image_size {image_size} ends before the information block "
                         f"(0x{INFO_OFFSET:X} + {INFO_SIZE})", "bad-size")
    if image_size + TRAILER_SIZE > limit:
        raise ImageError(f"{name}: ii_image_size {image_size} + trailer {TRAILER_SIZE} = "
                         f"{image_size + TRAILER_SIZE} bytes exceeds the limit of slot {SLOTS[slot]} "
                         f"({limit} bytes)", "bad-size")


def stack_pointer_problem(sp: int) -> str | None:
    """Why ``sp`` cannot be an initial stack pointer (None if it can): the stack grows down from it,
    so it lies above the SRAM base, at most at the SRAM end, 8-byte aligned (AAPCS)."""
    sram_end = LAYOUT.sram_base + LAYOUT.sram_size
    if not LAYOUT.sram_base < sp <= sram_end:
        return f"initial stack pointer 0x{sp:08X} is outside SRAM (0x{LAYOUT.sram_base:08X}-0x{sram_end:08X})"
    if sp % 8:
        return f"initial stack pointer 0x{sp:08X} is not 8-byte aligned"
    return None


def _check_vectors(data: bytes | bytearray | memoryview, region: Region, image_size: int, name: str) -> None:
    """Initial SP in SRAM; reset handler inside the image with the Thumb bit (as the bootloader)."""
    sp = int.from_bytes(data[0:4], "little")
    reset = int.from_bytes(data[4:8], "little")
    problem = stack_pointer_problem(sp)
    if problem:
        raise ImageError(f"{name}: {problem}", "bad-vectors")
    if not reset & 1:
        raise ImageError(f"{name}: reset handler 0x{reset:08X} has the Thumb bit clear", "bad-vectors")
    if not region.base <= reset & ~1 < region.base + image_size:
        raise ImageError(f"{name}: reset handler 0x{reset:08X} is outside the image "
                         f"(0x{region.base:08X}-0x{region.base + image_size:08X})", "bad-vectors")


def _check_trailer(trailer: dict[str, Any], name: str) -> None:
    if trailer["magic"] != _C["IMAGE_TRAILER_MAGIC"]:
        raise ImageError(f"{name}: it_magic is 0x{trailer['magic']:08X}, "
                         f"expected 0x{_C['IMAGE_TRAILER_MAGIC']:08X}", "bad-trailer")
    if trailer["format"] != _C["IMAGE_FORMAT_VERSION"]:
        raise ImageError(f"{name}: it_format is {trailer['format']}, expected {_C['IMAGE_FORMAT_VERSION']}",
                         "bad-trailer")
    if trailer["trailer_size"] != TRAILER_SIZE:
        raise ImageError(f"{name}: it_trailer_size is {trailer['trailer_size']}, expected {TRAILER_SIZE}",
                         "bad-trailer")
    # Only unsigned images: the bootloader cannot check a signature, and one it cannot check proves nothing.
    if trailer["sig_type"] != _C["SIG_NONE"]:
        raise ImageError(f"{name}: it_sig_type is {trailer['sig_type']}, expected {_C['SIG_NONE']} "
                         f"(SIG_NONE: signed images are not supported)", "bad-trailer")


def validate_image(data: bytes | bytearray | memoryview, slot: int | None = None, *,
                   name: str = "image", allow_trailing: bool = False) -> ImageInfo:
    """Check an image file; return what it says or raise :class:`ImageError`.

    ``slot`` (SLOT_A / SLOT_B) requires the image to be linked for that slot; ``None`` accepts
    either. ``allow_trailing`` accepts bytes after the trailer (a dump of a whole slot); a file
    must otherwise end with its trailer. ``name`` (the file name) prefixes every message.
    """
    data = memoryview(bytes(data))
    info = unpack_info(data, name)
    erased = all(b == 0xFF for b in data[INFO_OFFSET:INFO_OFFSET + INFO_SIZE])
    ii_slot = _check_info(info, slot, name, erased)
    region = LAYOUT.slot_region(ii_slot)
    image_size = info["image_size"]
    _check_size(image_size, ii_slot, name)
    end = image_size + TRAILER_SIZE
    if len(data) < end:
        raise ImageError(f"{name}: {len(data)} bytes, but ii_image_size {image_size} + trailer "
                         f"{TRAILER_SIZE} needs {end}: the file is truncated", "truncated")
    if len(data) > end and not allow_trailing:
        raise ImageError(f"{name}: {len(data) - end} unexpected bytes after the trailer "
                         f"(file is {len(data)} bytes, image + trailer {end})", "trailing")
    trailer = TRAILER.unpack(data, image_size)
    _check_trailer(trailer, name)
    _check_vectors(data, region, image_size, name)
    digest = hashlib.sha256(data[:image_size]).digest()
    if digest != trailer["sha256"]:
        raise ImageError(f"{name}: SHA-256 of bytes [0, {image_size}) is {digest.hex()}, "
                         f"it_sha256 says {bytes(trailer['sha256']).hex()}", "bad-hash")
    return ImageInfo(
        slot=ii_slot, load_addr=info["load_addr"],
        version=(info["ver_major"], info["ver_minor"], info["ver_patch"]), build=info["build"],
        image_size=image_size, sha256=bytes(trailer["sha256"]),
        file_sha256=hashlib.sha256(data[:end]).digest(), sig_type=trailer["sig_type"])


def read_image(path: str | Path, slot: int | None = None) -> ImageInfo:
    """Read and validate an image file (see :func:`validate_image`)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageError(f"Failed to read image {p}: {e.strerror or e}") from None
    return validate_image(data, slot, name=p.name)


def finish_image(raw: bytes | bytearray, slot: int | None = None, *, name: str = "image") -> bytes:
    """The post-link step: raw linked binary (from the slot base) -> image file.

    Pads with 0xFF to a multiple of ``IMAGE_ALIGN``, writes that length into ``ii_image_size``,
    and appends the trailer: ``it_sha256`` over ``[0, ii_image_size)`` with the size filled in,
    ``SIG_NONE``, signature and reserved bytes 0xFF. The result is validated before it is returned.
    """
    buf = bytearray(raw)
    info = unpack_info(buf, name)
    ii_slot = _check_info(info, slot, name)
    if info["image_size"] != _C["IMAGE_SIZE_UNSET"]:
        raise ImageError(f"{name}: ii_image_size is already set ({info['image_size']}): "
                         f"expected the placeholder 0x{_C['IMAGE_SIZE_UNSET']:08X} of a linked binary")
    buf += b"\xff" * (-len(buf) % ALIGN)
    image_size = len(buf)
    _check_size(image_size, ii_slot, name)
    at = INFO_OFFSET + _SIZE_FIELD_OFFSET
    buf[at:at + 4] = image_size.to_bytes(4, "little")
    trailer = TRAILER.pack(
        magic=_C["IMAGE_TRAILER_MAGIC"], format=_C["IMAGE_FORMAT_VERSION"], sig_type=_C["SIG_NONE"],
        trailer_size=TRAILER_SIZE, reserved0=0, sha256=hashlib.sha256(buf).digest(),
        signature=_erased("signature"), reserved1=_erased("reserved1"))
    out = bytes(buf + trailer)
    validate_image(out, ii_slot, name=name)
    return out
