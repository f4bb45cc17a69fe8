"""Images and releases made to order, for the tests and the benchmarks.

    >>> img = make_image(1, "1.1.0", size=40_000)          # valid for Slot B, never meant to run
    >>> len(img), validate_image(img).version_str
    (40000, '1.1.0')
    >>> restamp(img, (1, 2, 0), build=3, size=48_000)[:8] == img[:8]
    True

``make_image`` builds a fake-but-valid image from the spec structs alone (no toolchain): a vector
table, the information block, filler, the trailer. The bootloader would accept it, but its code is
random bytes: for devices that only store images (the fake STM32, the server). ``restamp`` gives a
real build's image another version, as a release of the same code would be, so that the STM32 twin
boots it. ``write_build`` and ``install_release`` lay out what `invoke build` writes and what a
server's sync installs.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fota_formats.image import INFO, INFO_OFFSET, TRAILER_SIZE, finish_image, validate_image
from fota_formats.semver import Version
from fota_formats.spec import IMAGE, LAYOUT

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fota_server.firmware import FirmwareFolder

_C = IMAGE.constants
HEAD_SIZE = INFO_OFFSET + INFO.size     # vector table and information block


def _triple(version: str | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(version, str):
        v = Version.parse(version)
        return v.major, v.minor, v.patch
    major, minor, patch = version
    return major, minor, patch


def make_image(slot: int, version: str | Sequence[int], size: int = 0, *, body: int = 2048,
               build: int = 7, seed: int = 0) -> bytes:
    """A finished image linked for ``slot`` of ``version`` ("1.2.0" or (1, 2, 0)): ``size`` bytes in
    all (trailer included), or else ``body`` bytes of filler after the information block. The filler
    is pseudo-random (erased-looking 0xFF would flatter the flash figures) and depends on the slot,
    version, build and ``seed``, so that two releases differ."""
    major, minor, patch = _triple(version)
    if size:
        if size < HEAD_SIZE + TRAILER_SIZE:
            raise ValueError(f"make_image: size {size} is below the {HEAD_SIZE + TRAILER_SIZE} bytes "
                             "of vector table, information block and trailer")
        body = size - HEAD_SIZE - TRAILER_SIZE
    region = LAYOUT.slot_region(slot)
    sp = LAYOUT.sram_base + LAYOUT.sram_size
    reset = (region.base + HEAD_SIZE) | 1
    raw = bytearray(sp.to_bytes(4, "little") + reset.to_bytes(4, "little"))
    raw += bytes(INFO_OFFSET - len(raw))
    raw += INFO.pack(magic=_C["IMAGE_INFO_MAGIC"], format=_C["IMAGE_FORMAT_VERSION"], slot=slot, flags=0,
                     load_addr=region.base, ver_major=major, ver_minor=minor, ver_patch=patch,
                     build=build, image_size=_C["IMAGE_SIZE_UNSET"])
    raw += random.Random(f"{major}.{minor}.{patch}+{build}/{slot}/{seed}").randbytes(body)
    return finish_image(raw, slot)


def restamp(image: bytes, version: str | Sequence[int], build: int | None = None, size: int = 0) -> bytes:
    """The same image with another version (and ``build``, unless None) in its information block and
    a matching trailer; ``size``: grown to that many bytes with pseudo-random filler after the code
    (never executed)."""
    info = validate_image(image)
    raw = bytearray(image[: info.image_size])
    if size > len(raw) + TRAILER_SIZE:
        raw += random.Random(size).randbytes(size - TRAILER_SIZE - len(raw))
    major, minor, patch = _triple(version)
    ii = INFO.unpack(raw, INFO_OFFSET)
    ii.update(ver_major=major, ver_minor=minor, ver_patch=patch, image_size=_C["IMAGE_SIZE_UNSET"])
    if build is not None:
        ii["build"] = build
    raw[INFO_OFFSET:INFO_OFFSET + INFO.size] = INFO.pack(**ii)
    return finish_image(bytes(raw), info.slot)


def write_build(build_dir: Path, version: str, *, version_a: str | None = None, version_b: str | None = None,
                body: int = 2048, seed: int = 0) -> Path:
    """Write slot-a.bin, slot-b.bin and version.txt of fake-but-valid images as `invoke build` does."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "slot-a.bin").write_bytes(make_image(_C["SLOT_A"], version_a or version, body=body,
                                                      seed=seed))
    (build_dir / "slot-b.bin").write_bytes(make_image(_C["SLOT_B"], version_b or version, body=body,
                                                      seed=seed))
    (build_dir / "version.txt").write_text(version + "\n")
    return build_dir


def install_release(folder: FirmwareFolder, tmp: Path, version: str, downgrade: bool = False,
                    body: int = 4096, key: Ed25519PrivateKey | None = None) -> None:
    """Put a verified release of fake-but-valid images into a server's firmware folder, as a sync
    would; ``tmp``: where to write its build first; ``key`` signs the manifest (default: a fresh
    throwaway key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from stm32_fota.release import check_build, make_manifest, signed_manifest
    from stm32_fota.signing import public_key_hash

    build = write_build(tmp / f"build-{version}-{secrets.token_hex(3)}", version, body=body)
    files = check_build(build)
    key = key or Ed25519PrivateKey.generate()
    raw, signature = signed_manifest(make_manifest(files, "test", downgrade, public_key_hash(key)), key)
    folder.install(files.version, {**files.images, "version.txt": files.version_text}, raw, signature)
