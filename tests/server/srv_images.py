"""Small fake-but-valid slot images built from the spec structs (no toolchain needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from stm32_fota.image import INFO, INFO_OFFSET, finish_image
from stm32_fota.semver import Version
from stm32_fota.spec import IMAGE, LAYOUT

_C = IMAGE.constants


def make_image(slot: int, version: str, body: int = 2048, build: int = 7, seed: int = 0) -> bytes:
    """A finished image for ``slot``: vector table, information block, ``body`` bytes of 'code'."""
    v = Version.parse(version)
    region = LAYOUT.slot_region(slot)
    sp = LAYOUT.sram_base + LAYOUT.sram_size
    reset = (region.base + INFO_OFFSET + INFO.size) | 1
    raw = bytearray(sp.to_bytes(4, "little") + reset.to_bytes(4, "little"))
    raw += bytes(INFO_OFFSET - len(raw))
    raw += INFO.pack(
        magic=_C["IMAGE_INFO_MAGIC"],
        format=_C["IMAGE_FORMAT_VERSION"],
        slot=slot,
        flags=0,
        load_addr=region.base,
        ver_major=v.major,
        ver_minor=v.minor,
        ver_patch=v.patch,
        build=build,
        image_size=_C["IMAGE_SIZE_UNSET"],
    )
    # deterministic, version-dependent filler so that two releases differ
    filler = hashlib.sha256(f"{version}/{slot}/{seed}".encode()).digest()
    raw += (filler * (body // len(filler) + 1))[:body]
    return finish_image(raw, slot)


def write_build(
    build_dir: Path,
    version: str,
    *,
    version_a: str | None = None,
    version_b: str | None = None,
    body: int = 2048,
    seed: int = 0,
) -> Path:
    """Write slot-a.bin, slot-b.bin and version.txt as `invoke build` does."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "slot-a.bin").write_bytes(make_image(_C["SLOT_A"], version_a or version, body, seed=seed))
    (build_dir / "slot-b.bin").write_bytes(make_image(_C["SLOT_B"], version_b or version, body, seed=seed))
    (build_dir / "version.txt").write_text(version + "\n")
    return build_dir
