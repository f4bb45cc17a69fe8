"""The post-link step: ELF -> image file (.bin) and Intel HEX (.hex) at the load address.

    >>> from stm32_fota.postlink import postlink
    >>> from stm32_fota.elfcheck import TARGETS
    >>> out = postlink("build/slot-b.elf", TARGETS["slot-b"])   # doctest: +SKIP
    >>> out.bin_path.name, out.image.version_str                # doctest: +SKIP
    ('slot-b.bin', '1.0.0')

A slot image is signed with imgtool (:func:`stm32_fota.imgsign.sign_image`): the MCUboot header goes
into the 0x200 zero bytes at the slot base, the TLV areas (security counter, slot, SHA-256, key hash,
Ed25519 signature) after the image. The .hex holds the same signed bytes at the slot's addresses:
what a debugger loads (with the .elf beside it for the symbols). The bootloader's .bin/.hex are the
plain flash contents. Gaps between sections read 0xFF, as erased
flash does. Run :func:`stm32_fota.elfcheck.check_elf` first: only sections inside the target's flash
region are copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fota_formats.files import write_atomic
from fota_formats.image import ImageInfo, validate_image

from .elfcheck import ElfImage, Target
from .errors import BuildError
from .imgsign import sign_image

HEX_RECORD = 16  # data bytes per Intel HEX record, as objcopy writes them


def _record(rtype: int, addr16: int, payload: bytes) -> str:
    body = bytes([len(payload), addr16 >> 8, addr16 & 0xFF, rtype]) + payload
    return ":" + body.hex().upper() + f"{-sum(body) & 0xFF:02X}"


def ihex(data: bytes, base: int, start: int | None = None) -> str:
    """Intel HEX (I32HEX) text of ``data`` placed at ``base``; ``start``: entry (record 05)."""
    lines: list[str] = []
    upper = -1
    off = 0
    while off < len(data):
        addr = base + off
        if addr >> 16 != upper:
            upper = addr >> 16
            lines.append(_record(0x04, 0, upper.to_bytes(2, "big")))
        # A data record never crosses a 64 KB boundary (its address field has 16 bits).
        n = min(HEX_RECORD, 0x10000 - (addr & 0xFFFF), len(data) - off)
        lines.append(_record(0x00, addr & 0xFFFF, data[off:off + n]))
        off += n
    if start is not None:
        lines.append(_record(0x05, 0, start.to_bytes(4, "big")))
    lines.append(_record(0x01, 0, b""))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Signing:
    """How post-link signs a slot image: the key file (outside the repository) and what goes into
    the header and the protected TLVs."""

    key_path: Path
    version: tuple[int, int, int]
    build: int
    security_counter: int


@dataclass(frozen=True)
class PostlinkResult:
    target: Target
    bin_path: Path
    hex_path: Path
    size: int                  # bytes of the .bin
    image: ImageInfo | None    # slot images only


def outputs(elf: Path) -> tuple[Path, Path]:
    return elf.with_suffix(".bin"), elf.with_suffix(".hex")


def is_stale(elf: str | Path) -> bool:
    """True when the .bin or .hex beside ``elf`` is missing or older than the ELF."""
    elf = Path(elf)
    mtime = elf.stat().st_mtime_ns
    return any(not p.exists() or p.stat().st_mtime_ns < mtime for p in outputs(elf))


def postlink(elf: str | Path, target: Target, signing: Signing | None = None) -> PostlinkResult:
    """Write <elf stem>.bin and .hex beside the ELF (a slot image signed per ``signing``); return
    what was written."""
    elf = Path(elf)
    bin_path, hex_path = outputs(elf)
    raw = ElfImage.load(elf).flash_bytes(target.region)
    if len(raw) < 8:
        raise BuildError(f"Failed to post-link {elf.name}: nothing is stored at the base of "
                         f"{target.region.name} (0x{target.region.base:08X})")
    image = None
    data = raw
    vectors = 0
    if target.slot is not None:
        if signing is None:
            raise BuildError(f"Failed to post-link {elf.name}: a slot image must be signed (no signing key)")
        data = sign_image(raw, slot=target.slot, version=signing.version, build=signing.build,
                          security_counter=signing.security_counter, key_path=signing.key_path, name=elf.name)
        image = validate_image(data, target.slot, name=bin_path.name)
        vectors = image.signed_size - image.img_size - image.protect_tlv_size   # the header's size
    start = int.from_bytes(data[vectors + 4:vectors + 8], "little")
    write_atomic(bin_path, data)
    write_atomic(hex_path, ihex(data, target.region.base, start).encode("ascii"))
    return PostlinkResult(target, bin_path, hex_path, len(data), image)
