"""Images and releases made to order, for the tests and the benchmarks.

    >>> img = make_image(1, "1.1.0", size=40_000)          # valid for Slot B, never meant to run
    >>> len(img), validate_image(img).version_str
    (40000, '1.1.0')
    >>> restamp(img, (1, 2, 0), build=3, size=48_000)[:4] == img[:4]
    True

``make_image`` builds a fake-but-valid signed image from the spec structs alone (no toolchain, no
imgtool: :func:`fota_formats.image.build_image`, byte for byte what imgtool makes): the header, a
vector table, filler, the TLV areas. The bootloader would accept it, but its code is random bytes:
for devices that only store images (the fake STM32, the server). ``restamp`` gives a real build's
image another version (or security counter), re-signed, as a release of the same code would be, so
that the STM32 twin boots it. ``write_build`` and ``install_release`` lay out what `invoke build`
writes and what a server's sync installs. Images are signed with ``key``, by default the lab key:
the key of FOTA_SIGNING_KEY (the key the firmware under test trusts), else one made per process.
"""

from __future__ import annotations

import functools
import os
import random
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_formats.image import HDR_SIZE, TLV_AREA_SIZE, build_image, validate_image
from fota_formats.semver import Version
from fota_formats.spec import IMAGE, LAYOUT
from stm32_fota.signing import load_signing_key, public_key_hash

if TYPE_CHECKING:
    from fota_server.firmware import FirmwareFolder

_C = IMAGE.constants
HEAD_SIZE = HDR_SIZE + 8                # header and the two vectors the checks read


@functools.cache
def lab_key() -> Ed25519PrivateKey:
    """The key images are signed with by default (see the module docstring)."""
    path = os.environ.get("FOTA_SIGNING_KEY")
    return load_signing_key(Path(path)) if path else Ed25519PrivateKey.generate()


def _triple(version: str | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(version, str):
        v = Version.parse(version)
        return v.major, v.minor, v.patch
    major, minor, patch = version
    return major, minor, patch


def sign_body(body: bytes, slot: int, version: Sequence[int], build: int, counter: int,
              key: Ed25519PrivateKey | None = None) -> bytes:
    """``body`` (vector table onwards, padded to IMAGE_BODY_ALIGN) as a signed image for ``slot``."""
    key = key or lab_key()
    body = body + b"\xff" * (-len(body) % _C["IMAGE_BODY_ALIGN"])
    return build_image(body, slot, _triple(version), build, counter, bytes.fromhex(public_key_hash(key)),
                       key.sign)


def make_image(slot: int, version: str | Sequence[int], size: int = 0, *, body: int = 2048, build: int = 7,
               seed: int = 0, counter: int = 1, key: Ed25519PrivateKey | None = None) -> bytes:
    """A signed image for ``slot`` of ``version`` ("1.2.0" or (1, 2, 0)): ``size`` bytes in all (a
    multiple of 4), or else ``body`` bytes of filler after the vectors. The
    filler is pseudo-random (erased-looking 0xFF would flatter the flash figures) and depends on the
    slot, version, build and ``seed``, so that two releases differ."""
    major, minor, patch = _triple(version)
    if size:
        if size < HEAD_SIZE + TLV_AREA_SIZE + 8:
            raise ValueError(f"make_image: size {size} is below the {HEAD_SIZE + TLV_AREA_SIZE + 8} bytes "
                             "of header, vectors and TLV areas")
        body = size - HEAD_SIZE - TLV_AREA_SIZE
        body -= (body + 8) % _C["IMAGE_BODY_ALIGN"]
    region = LAYOUT.slot_region(slot)
    sp = LAYOUT.sram_base + LAYOUT.sram_size
    reset = (region.base + HEAD_SIZE) | 1
    raw = sp.to_bytes(4, "little") + reset.to_bytes(4, "little")
    raw += random.Random(f"{major}.{minor}.{patch}+{build}/{slot}/{seed}").randbytes(body)
    return sign_body(raw, slot, (major, minor, patch), build, counter, key)


def restamp(image: bytes, version: str | Sequence[int], build: int | None = None, size: int = 0, *,
            counter: int | None = None, key: Ed25519PrivateKey | None = None) -> bytes:
    """The same image with another version (and ``build``, ``counter``, unless None), re-signed;
    ``size``: grown to at most that many bytes with pseudo-random filler after the code (never
    executed)."""
    info = validate_image(image)
    raw = image[HDR_SIZE:HDR_SIZE + info.img_size]
    grown = (size - HDR_SIZE - TLV_AREA_SIZE) & ~(_C["IMAGE_BODY_ALIGN"] - 1)   # never past ``size``
    if grown > len(raw):
        raw += random.Random(size).randbytes(grown - len(raw))
    return sign_body(raw, info.slot, _triple(version), info.build if build is None else build,
                     info.security_counter if counter is None else counter, key)


def write_build(build_dir: Path, version: str, *, version_a: str | None = None, version_b: str | None = None,
                body: int = 2048, seed: int = 0, key: Ed25519PrivateKey | None = None) -> Path:
    """Write slot-a.bin, slot-b.bin and version.txt of fake-but-valid images as `invoke build` does."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "slot-a.bin").write_bytes(make_image(_C["SLOT_A"], version_a or version, body=body,
                                                      seed=seed, key=key))
    (build_dir / "slot-b.bin").write_bytes(make_image(_C["SLOT_B"], version_b or version, body=body,
                                                      seed=seed, key=key))
    (build_dir / "version.txt").write_text(version + "\n")
    return build_dir


def install_release(folder: FirmwareFolder, tmp: Path, version: str, downgrade: bool = False,
                    body: int = 4096, key: Ed25519PrivateKey | None = None) -> None:
    """Put a verified release of fake-but-valid images into a server's firmware folder, as a sync
    would; ``tmp``: where to write its build first; ``key`` signs the images and the manifest
    (default: the lab key)."""
    from stm32_fota.release import check_build, make_manifest, signed_manifest

    key = key or lab_key()
    build = write_build(tmp / f"build-{version}-{secrets.token_hex(3)}", version, body=body, key=key)
    files = check_build(build)
    raw, signature = signed_manifest(make_manifest(files, "test", downgrade, public_key_hash(key)), key)
    folder.install(files.version, {**files.images, "version.txt": files.version_text}, raw, signature)
