"""MCUboot slot images: parse and check them as the bootloader does, and build them as imgtool does.

    >>> from fota_formats.image import validate_image
    >>> info = validate_image(open("build/slot-b.bin", "rb").read())   # doctest: +SKIP
    >>> info.slot_name, info.version_str, info.security_counter, info.key_hash.hex()[:8]  # doctest: +SKIP
    ('B', '1.0.0', 1, '3fa2c1d0')

An image is what a slot holds (docs/image-format.md): MCUboot's ``image_header`` at the slot base,
padded with zeros to ``IMAGE_HDR_SIZE``; the vector table and the rest of the linked binary
(``ih_img_size`` bytes); the protected TLV area (security counter, the slot the image is for); the
unprotected TLV area (SHA-256 of everything before it, the signing key's hash, the Ed25519 signature
of that SHA-256). The layout comes from ``spec/image.toml``.

:func:`validate_image` applies the rules of ``image_validate()`` (stm32/lib/image.c) in the same
order and names each refusal as the bootloader does. This package has no cryptography: the
signature is checked by the ``verify`` callable given (``stm32_fota.signing`` and the server's key
ring have one), and :func:`build_image` takes the signing as a callable, so that the tests and the
lab make images without imgtool, byte for byte what imgtool makes (tests/tools/test_imgsign.py).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ImageError
from .spec import IMAGE, LAYOUT, Region

_C = IMAGE.constants
HEADER = IMAGE.structs["image_header"]
TLV_INFO = IMAGE.structs["image_tlv_info"]
TLV = IMAGE.structs["image_tlv"]
MAGIC: int = _C["IMAGE_MAGIC"]
HDR_SIZE: int = _C["IMAGE_HDR_SIZE"]
BODY_ALIGN: int = _C["IMAGE_BODY_ALIGN"]
PROT_INFO_MAGIC: int = _C["IMAGE_TLV_PROT_INFO_MAGIC"]
INFO_MAGIC: int = _C["IMAGE_TLV_INFO_MAGIC"]
TLV_KEYHASH: int = _C["IMAGE_TLV_KEYHASH"]
TLV_SHA256: int = _C["IMAGE_TLV_SHA256"]
TLV_ED25519: int = _C["IMAGE_TLV_ED25519"]
TLV_SEC_CNT: int = _C["IMAGE_TLV_SEC_CNT"]
TLV_SLOT: int = _C["IMAGE_TLV_SLOT"]
TLV_AREA_SIZE: int = _C["IMAGE_TLV_AREA_SIZE"]
SLOTS: dict[int, str] = {_C["SLOT_A"]: "A", _C["SLOT_B"]: "B"}
VECTORS_SIZE = 8  # initial SP and reset handler: what the checks read of the vector table

# Kinds and value lengths of each area; anything else in the protected area is refused, anything
# else in the unprotected area is ignored (MCUboot's rule: only the protected area is signed).
PROTECTED: dict[int, int] = {TLV_SEC_CNT: 4, TLV_SLOT: 4}
UNPROTECTED: dict[int, int] = {TLV_SHA256: 32, TLV_KEYHASH: 32, TLV_ED25519: 64}
TLV_NAMES = {TLV_SEC_CNT: "SEC_CNT", TLV_SLOT: "SLOT", TLV_SHA256: "SHA256", TLV_KEYHASH: "KEYHASH",
             TLV_ED25519: "ED25519"}

# verify(key_hash, digest, signature) -> None when a trusted key with that hash signed digest,
# else the fault: "unknown-key" or "bad-signature".
Verifier = Callable[[bytes, bytes, bytes], "str | None"]


def slot_limit(slot: int) -> int:
    """Largest image (header + body + TLVs) slot ``slot`` accepts: the slot or 256 KB, the smaller."""
    return min(LAYOUT.slot_region(slot).size, LAYOUT.max_image_size)


@dataclass(frozen=True)
class ImageInfo:
    """A checked image: what its header and TLVs say."""

    slot: int
    version: tuple[int, int, int]
    build: int
    img_size: int              # ih_img_size
    protect_tlv_size: int      # ih_protect_tlv_size
    size: int                  # header + body + both TLV areas: the file, the bytes on flash
    security_counter: int
    key_hash: bytes            # KEYHASH TLV
    digest: bytes              # SHA256 TLV: of [0, signed_size)
    signature: bytes           # ED25519 TLV
    file_sha256: bytes         # SHA-256 of the whole image: what BEGIN and manifests carry
    signature_checked: bool    # a verifier checked the signature

    @property
    def signed_size(self) -> int:
        return HDR_SIZE + self.img_size + self.protect_tlv_size

    @property
    def load_addr(self) -> int:
        """Where the image runs: the base of its slot (the SLOT TLV)."""
        return self.region.base

    @property
    def file_size(self) -> int:
        return self.size

    @property
    def slot_name(self) -> str:
        return SLOTS[self.slot]

    @property
    def region(self) -> Region:
        return LAYOUT.slot_region(self.slot)

    @property
    def version_str(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def key_id(self) -> str:
        """The first 8 hex digits of the key hash: how logs and the bridge name the key."""
        return self.key_hash.hex()[:8]

    def describe(self) -> str:
        return (f"slot {self.slot_name} v{self.version_str}+{self.build}, {self.size} bytes, "
                f"security counter {self.security_counter}, key {self.key_id}, "
                f"sha256 {self.file_sha256.hex()[:16]}...")


def stack_pointer_problem(sp: int) -> str | None:
    """Why ``sp`` cannot be an initial stack pointer (None if it can): the stack grows down from it,
    so it lies above the SRAM base, at most at the SRAM end, 8-byte aligned (AAPCS)."""
    sram_end = LAYOUT.sram_base + LAYOUT.sram_size
    if not LAYOUT.sram_base < sp <= sram_end:
        return f"initial stack pointer 0x{sp:08X} is outside SRAM (0x{LAYOUT.sram_base:08X}-0x{sram_end:08X})"
    if sp % 8:
        return f"initial stack pointer 0x{sp:08X} is not 8-byte aligned"
    return None


def unpack_header(data: bytes | bytearray | memoryview, name: str = "image") -> dict[str, Any]:
    """The raw fields of the image header (no checks beyond the length)."""
    if len(data) < HDR_SIZE:
        raise ImageError(f"{name}: {len(data)} bytes, too short for the image header "
                         f"({HDR_SIZE} bytes)", "truncated")
    return HEADER.unpack(data, 0)


class _Parse:
    """One pass over an image, in the bootloader's order; ``fail`` raises with the fault."""

    def __init__(self, data: memoryview, slot: int | None, name: str) -> None:
        self.data, self.slot, self.name = data, slot, name

    def fail(self, msg: str, fault: str) -> ImageError:
        return ImageError(f"{self.name}: {msg}", fault)

    def need(self, end: int, what: str) -> None:
        if len(self.data) < end:
            raise self.fail(f"{len(self.data)} bytes, but {what} ends at {end}: the file is truncated",
                            "truncated")

    def header(self) -> tuple[dict[str, Any], int]:
        d = self.data
        hdr = unpack_header(d, self.name)
        if all(b == 0xFF for b in d[:HEADER.size]):
            raise self.fail("no image: the header is erased (0xFF)", "erased")
        if hdr["magic"] != MAGIC:
            if hdr["magic"] == 0:
                raise self.fail("image withdrawn: ih_magic is 0x00000000", "bad-magic")
            raise self.fail(f"ih_magic is 0x{hdr['magic']:08X}, expected 0x{MAGIC:08X}", "bad-magic")
        for field, want in (("hdr_size", HDR_SIZE), ("load_addr", 0), ("flags", 0)):
            if hdr[field] != want:
                raise self.fail(f"ih_{field} is 0x{hdr[field]:X}, expected 0x{want:X}", "bad-header")
        # Which slot: the caller's, else the slot TLV's (read later); the limit is the smaller one.
        limit = slot_limit(self.slot) if self.slot is not None else LAYOUT.max_image_size
        img, prot = hdr["img_size"], hdr["protect_tlv_size"]
        if img < VECTORS_SIZE or img % BODY_ALIGN:
            raise self.fail(f"ih_img_size {img} is below {VECTORS_SIZE} or not a multiple of {BODY_ALIGN}",
                            "bad-size")
        if HDR_SIZE + img + prot + TLV_INFO.size > limit:
            raise self.fail(f"header {HDR_SIZE} + ih_img_size {img} + ih_protect_tlv_size {prot} + the TLV "
                            f"info {TLV_INFO.size} run past the limit of {limit} bytes", "bad-size")
        return hdr, limit

    def area(self, off: int, end: int, magic: int, what: str) -> tuple[int, int]:
        """Check a TLV area's info header at ``off`` (area must end by ``end``); return (start, stop)."""
        if end - off < TLV_INFO.size:
            raise self.fail(f"no room for the {what} TLV info at {off} (the area ends at {end})", "bad-size")
        self.need(off + TLV_INFO.size, f"the {what} TLV info")
        info = TLV_INFO.unpack(self.data, off)
        if info["magic"] != magic:
            raise self.fail(f"the {what} TLV area at {off} has magic 0x{info['magic']:04X}, "
                            f"expected 0x{magic:04X}", "bad-tlv-info")
        tot = info["tlv_tot"]
        if tot < TLV_INFO.size or off + tot > end:
            raise self.fail(f"the {what} TLV area at {off} claims {tot} bytes: it runs past {end} "
                            f"or is shorter than its header", "bad-tlv")
        return off + TLV_INFO.size, off + tot

    def tlvs(self, start: int, stop: int, protected: bool, found: dict[int, bytes]) -> None:
        off = start
        what = "protected" if protected else "unprotected"
        while off < stop:
            if off + TLV.size > stop:
                raise self.fail(f"a TLV header at {off} runs past the {what} area's end {stop}", "bad-tlv")
            self.need(off + TLV.size, "a TLV header")
            t = TLV.unpack(self.data, off)
            kind, length = t["type"], t["len"]
            vstart = off + TLV.size
            if vstart + length > stop:
                raise self.fail(f"TLV 0x{kind:02X} at {off}: {length} bytes run past the {what} area's "
                                f"end {stop}", "bad-tlv")
            mine, other = (PROTECTED, UNPROTECTED) if protected else (UNPROTECTED, PROTECTED)
            if kind in other:
                raise self.fail(f"TLV {TLV_NAMES[kind]} is in the {what} area; it belongs to the other",
                                "misplaced-tlv")
            if kind in mine:
                if mine[kind] != length:
                    raise self.fail(f"TLV {TLV_NAMES[kind]} is {length} bytes, expected {mine[kind]}",
                                    "bad-tlv")
                if kind in found:
                    raise self.fail(f"TLV {TLV_NAMES[kind]} appears twice", "duplicate-tlv")
                self.need(vstart + length, f"TLV {TLV_NAMES[kind]}")
                found[kind] = bytes(self.data[vstart:vstart + length])
            elif protected:
                raise self.fail(f"unknown TLV 0x{kind:02X} in the protected area", "unknown-tlv")
            off = vstart + length


def validate_image(data: bytes | bytearray | memoryview, slot: int | None = None, *, name: str = "image",
                   allow_trailing: bool = False, verify: Verifier | None = None) -> ImageInfo:
    """Check an image; return what it says or raise :class:`ImageError` naming the rule.

    ``slot`` (SLOT_A / SLOT_B) requires the image to be for that slot (its slot TLV); ``None``
    accepts either. ``allow_trailing`` accepts bytes after the TLVs (a dump of a whole slot).
    ``verify`` checks the signature (see :data:`Verifier`); without it the SHA-256 is still checked,
    and ``signature_checked`` is False.
    """
    d = memoryview(bytes(data))
    p = _Parse(d, slot, name)
    hdr, limit = p.header()
    img, prot = hdr["img_size"], hdr["protect_tlv_size"]
    signed = HDR_SIZE + img + prot
    found: dict[int, bytes] = {}
    if prot:
        start, stop = p.area(HDR_SIZE + img, signed, PROT_INFO_MAGIC, "protected")
        if stop != signed:
            raise p.fail(f"the protected TLV area is {stop - start + TLV_INFO.size} bytes, "
                         f"ih_protect_tlv_size says {prot}", "bad-tlv-info")
        p.tlvs(start, stop, True, found)
    start, end = p.area(signed, limit, INFO_MAGIC, "unprotected")
    p.tlvs(start, end, False, found)
    if TLV_ED25519 not in found or TLV_KEYHASH not in found:
        raise p.fail("unsigned: no " + " and no ".join(TLV_NAMES[k] for k in (TLV_KEYHASH, TLV_ED25519)
                                                      if k not in found) + " TLV", "unsigned")
    missing = [TLV_NAMES[k] for k in (TLV_SHA256, TLV_SEC_CNT, TLV_SLOT) if k not in found]
    if missing:
        raise p.fail(f"no {', '.join(missing)} TLV", "missing-tlv")
    slot_base = int.from_bytes(found[TLV_SLOT], "little")
    bases = {LAYOUT.slot_region(s).base: s for s in SLOTS}
    if slot_base not in bases:
        raise p.fail(f"the slot TLV says 0x{slot_base:08X}, no slot's base", "wrong-slot")
    img_slot = bases[slot_base]
    if slot is not None and img_slot != slot:
        raise p.fail(f"the image is for slot {SLOTS[img_slot]} (0x{slot_base:08X}), expected slot "
                     f"{SLOTS[slot]} (0x{LAYOUT.slot_region(slot).base:08X})", "wrong-slot")
    if end > slot_limit(img_slot):
        raise p.fail(f"{end} bytes exceed the limit of slot {SLOTS[img_slot]} ({slot_limit(img_slot)})",
                     "bad-tlv")
    if len(d) > end and not allow_trailing:
        raise p.fail(f"{len(d) - end} unexpected bytes after the TLVs (file is {len(d)} bytes, "
                     f"image {end})", "trailing")
    _check_vectors(p, LAYOUT.slot_region(img_slot), img)
    # The bootloader's order: the key is looked up before the hash, the signature checked after it.
    # The signature covers the SHA256 TLV's value, so it can be checked first and reported last.
    fault = verify(found[TLV_KEYHASH], found[TLV_SHA256], found[TLV_ED25519]) if verify else None
    if fault == "unknown-key":
        raise p.fail(f"signed by key {found[TLV_KEYHASH].hex()[:8]}..., which is not trusted", fault)
    digest = hashlib.sha256(d[:signed]).digest()
    if digest != found[TLV_SHA256]:
        raise p.fail(f"SHA-256 of bytes [0, {signed}) is {digest.hex()}, the SHA256 TLV says "
                     f"{found[TLV_SHA256].hex()}", "bad-hash")
    if fault is not None:
        raise p.fail(f"the Ed25519 signature does not match (key {found[TLV_KEYHASH].hex()[:8]})", fault)
    return ImageInfo(
        slot=img_slot, version=(hdr["ver_major"], hdr["ver_minor"], hdr["ver_revision"]),
        build=hdr["ver_build"], img_size=img, protect_tlv_size=prot, size=end,
        security_counter=int.from_bytes(found[TLV_SEC_CNT], "little"), key_hash=found[TLV_KEYHASH],
        digest=digest, signature=found[TLV_ED25519], file_sha256=hashlib.sha256(d[:end]).digest(),
        signature_checked=verify is not None)


def _check_vectors(p: _Parse, region: Region, img: int) -> None:
    """Initial SP in SRAM; reset handler with the Thumb bit, inside this slot's image body: a second
    binding of the image to its slot, independent of the slot TLV."""
    sp, reset = struct.unpack_from("<II", p.data, HDR_SIZE)
    problem = stack_pointer_problem(sp)
    if problem:
        raise p.fail(problem, "bad-vectors")
    body = region.base + HDR_SIZE
    if not reset & 1:
        raise p.fail(f"reset handler 0x{reset:08X} has the Thumb bit clear", "bad-vectors")
    if not body <= reset & ~1 < body + img:
        raise p.fail(f"reset handler 0x{reset:08X} is outside the image body "
                     f"(0x{body:08X}-0x{body + img:08X})", "bad-vectors")


def _tlv(kind: int, value: bytes) -> bytes:
    return TLV.pack(type=kind, len=len(value)) + value


def build_image(body: bytes, slot: int, version: tuple[int, int, int], build: int, security_counter: int,
                key_hash: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """An image as ``imgtool sign`` makes it from ``body`` (the linked binary after the header)."""
    if len(body) % BODY_ALIGN:
        raise ImageError(f"the image body is {len(body)} bytes, not a multiple of {BODY_ALIGN}")
    prot = _tlv(TLV_SEC_CNT, security_counter.to_bytes(4, "little")) + \
        _tlv(TLV_SLOT, LAYOUT.slot_region(slot).base.to_bytes(4, "little"))
    prot = TLV_INFO.pack(magic=PROT_INFO_MAGIC, tlv_tot=TLV_INFO.size + len(prot)) + prot
    hdr = HEADER.pack(magic=MAGIC, hdr_size=HDR_SIZE, protect_tlv_size=len(prot), img_size=len(body),
                      ver_major=version[0], ver_minor=version[1], ver_revision=version[2], ver_build=build)
    signed = hdr.ljust(HDR_SIZE, b"\0") + body + prot
    digest = hashlib.sha256(signed).digest()
    tlvs = _tlv(TLV_SHA256, digest) + _tlv(TLV_KEYHASH, key_hash) + _tlv(TLV_ED25519, sign(digest))
    return signed + TLV_INFO.pack(magic=INFO_MAGIC, tlv_tot=TLV_INFO.size + len(tlvs)) + tlvs


def read_image(path: str | Path, slot: int | None = None, verify: Verifier | None = None) -> ImageInfo:
    """Read and check an image file (see :func:`validate_image`)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageError(f"Failed to read image {p}: {e.strerror or e}") from None
    return validate_image(data, slot, name=p.name, verify=verify)


_VERSION_RE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")
_VERSION_LIMITS = {"major": 0xFF, "minor": 0xFF, "patch": 0xFFFF}   # ih_ver_major, _minor, _revision
BUILD_MAX = 0xFFFF_FFFF                                              # ih_ver_build


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``, within the widths of the header's version fields."""
    m = _VERSION_RE.fullmatch(text.strip())
    if not m:
        raise ImageError(f"Failed to parse version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.0.0")
    parts = tuple(int(x) for x in m.groups())
    for (name, limit), value in zip(_VERSION_LIMITS.items(), parts, strict=True):
        if value > limit:
            raise ImageError(f"Failed to parse version {text!r}: {name} {value} exceeds {limit}")
    return parts[0], parts[1], parts[2]


def check_build_number(build_number: int) -> int:
    if not 0 <= build_number <= BUILD_MAX:
        raise ImageError(f"Failed to use build number {build_number}: must be 0..{BUILD_MAX}")
    return build_number


def header_version(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """(major, minor, patch, build) of an image's header, unchecked (what a sender puts into BEGIN)."""
    h = unpack_header(data)
    return h["ver_major"], h["ver_minor"], h["ver_revision"], h["ver_build"]


def _protected_u32(data: bytes | bytearray | memoryview, kind: int) -> int | None:
    """The u32 value of the protected TLV ``kind``, unchecked; None when it cannot be found."""
    try:
        h = unpack_header(data)
        off = HDR_SIZE + h["img_size"] + TLV_INFO.size
        end = HDR_SIZE + h["img_size"] + h["protect_tlv_size"]
        while off + TLV.size <= min(end, len(data)):
            t = TLV.unpack(data, off)
            if t["type"] == kind and t["len"] == 4 and off + 8 <= len(data):
                return int.from_bytes(data[off + 4:off + 8], "little")
            off += TLV.size + t["len"]
    except (ImageError, struct.error):
        return None
    return None


def image_slot(data: bytes | bytearray | memoryview) -> int | None:
    """The slot an image's SLOT TLV names, unchecked; None when it cannot be found (a sender's
    guess of the target: the device checks it)."""
    base = _protected_u32(data, TLV_SLOT)
    return next((s for s in SLOTS if LAYOUT.slot_region(s).base == base), None)


def image_counter(data: bytes | bytearray | memoryview) -> int | None:
    """The security counter an image's SEC_CNT TLV holds, unchecked; None when it cannot be found
    (what a sender announces in BEGIN: the device checks it at VERIFY)."""
    return _protected_u32(data, TLV_SEC_CNT)
    return None
