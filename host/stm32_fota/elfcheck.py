"""Check a linked firmware ELF against the flash layout before it becomes an image.

    >>> from stm32_fota.elfcheck import TARGETS, check_elf
    >>> r = check_elf("build/slot-b.elf", TARGETS["slot-b"], version=(1, 0, 0), build=0)  # doctest: +SKIP
    >>> r.flash_used                                                                    # doctest: +SKIP
    9824

The checks: the vector table sits at the region base; the initial stack pointer lies in
SRAM; the reset handler lies inside the region with the Thumb bit set; every loadable section is
stored inside its flash region and runs there or in RAM (SRAM, CCM); nothing touches the metadata
sector; the image information block sits at ``IMAGE_INFO_OFFSET`` and names the expected slot,
link address and version; the image plus trailer fits the slot and 256 KB. Checking a Slot-A ELF
as Slot-B fails on the base, the vectors and the information block alike.

Every problem found is collected; :class:`ElfCheckError` lists them all, each prefixed with the
file name, e.g. ``slot-b.elf: section .text at 0x08020000 is outside slot_b (0x08060000-0x080E0000)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from fota_formats.image import (
    INFO,
    INFO_OFFSET,
    INFO_SIZE,
    SLOTS,
    TRAILER_SIZE,
    slot_limit,
    stack_pointer_problem,
)
from fota_formats.spec import IMAGE, LAYOUT, Region

from .errors import ElfCheckError

_C = IMAGE.constants
INFO_SECTION = ".image_info"


@dataclass(frozen=True)
class Target:
    """One firmware build product: its file stem, flash region and slot (None: bootloader)."""

    name: str
    region_name: str
    slot: int | None

    @property
    def region(self) -> Region:
        return LAYOUT.region(self.region_name)

    @property
    def limit(self) -> int:
        """Largest flash footprint allowed: image + trailer for a slot, the region for the bootloader."""
        return self.region.size if self.slot is None else slot_limit(self.slot)

    def variant(self, variant: str) -> Target:
        """The same target built with APP_VARIANT=variant (slot-b-hang, ...)."""
        if self.slot is None:
            raise ValueError("the bootloader has no variants")
        return Target(f"{self.name}-{variant}", self.region_name, self.slot)


TARGETS: dict[str, Target] = {
    "bootloader": Target("bootloader", "bootloader", None),
    "slot-a": Target("slot-a", "slot_a", _C["SLOT_A"]),
    "slot-b": Target("slot-b", "slot_b", _C["SLOT_B"]),
}


def _span(region: Region) -> str:
    return f"{region.name} (0x{region.base:08X}-0x{region.end:08X})"


_SRAM = Region("sram", -1, LAYOUT.sram_base, LAYOUT.sram_size, -1, -1)
_CCM = Region("ccm", -1, LAYOUT.ccm_base, LAYOUT.ccm_size, -1, -1)
_METADATA = LAYOUT.region("metadata")


@dataclass(frozen=True)
class Section:
    """An allocated section: where it runs (vma) and where it is stored in flash (lma, None: NOBITS)."""

    name: str
    vma: int
    lma: int | None
    size: int
    data: bytes = field(repr=False, default=b"")


@dataclass
class ElfImage:
    """The allocated sections of an ELF file (addresses and contents), read once."""

    path: Path
    sections: list[Section]
    machine: str

    @classmethod
    def load(cls, path: str | Path) -> ElfImage:
        p = Path(path)
        try:
            with p.open("rb") as f:
                elf = ELFFile(f)
                machine = elf["e_machine"]
                if elf.elfclass != 32 or not elf.little_endian:
                    raise ElfCheckError(p.name, [f"not a 32-bit little-endian ELF (machine {machine})"])
                loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
                sections = []
                for sec in elf.iter_sections():
                    if not sec["sh_flags"] & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                        continue
                    vma, size = sec["sh_addr"], sec["sh_size"]
                    if sec["sh_type"] == "SHT_NOBITS":
                        sections.append(Section(sec.name, vma, None, size))
                        continue
                    lma = vma
                    for seg in loads:
                        if seg.section_in_segment(sec):
                            lma = seg["p_paddr"] + (vma - seg["p_vaddr"])
                            break
                    sections.append(Section(sec.name, vma, lma, size, sec.data()))
        except OSError as e:
            raise ElfCheckError(p.name, [f"cannot be read: {e.strerror or e}"]) from None
        except ELFError as e:
            raise ElfCheckError(p.name, [f"is not a valid ELF file: {e}"]) from None
        return cls(p, sections, machine)

    def stored(self) -> list[Section]:
        """Sections with contents in flash (PROGBITS), by load address."""
        return sorted((s for s in self.sections if s.lma is not None), key=lambda s: s.lma or 0)

    def flash_bytes(self, region: Region) -> bytes:
        """The flash contents from ``region.base`` to the end of the last stored byte; gaps 0xFF.

        What ``objcopy -O binary`` writes, except that gaps read as erased flash. Sections stored
        outside the region are left out (the checks report them).
        """
        inside = [s for s in self.stored() if s.lma is not None and region.contains(s.lma, s.size)]
        if not inside:
            return b""
        end = max((s.lma or 0) + s.size for s in inside)
        buf = bytearray(b"\xff" * (end - region.base))
        for s in inside:
            off = (s.lma or 0) - region.base
            buf[off:off + s.size] = s.data
        return bytes(buf)


@dataclass
class ElfReport:
    """What a passing ELF uses: flash bytes (with the trailer for a slot image) and RAM bytes."""

    path: Path
    target: Target
    flash_used: int
    sram_used: int
    ccm_used: int
    info: dict[str, Any] | None

    @property
    def flash_limit(self) -> int:
        return self.target.limit


def _overlaps(region: Region, addr: int, size: int) -> bool:
    return addr < region.end and region.base < addr + size


def _check_sections(img: ElfImage, region: Region, problems: list[str]) -> None:
    ram = (_SRAM, _CCM)
    for s in img.sections:
        if s.lma is not None:
            if _overlaps(_METADATA, s.lma, s.size) or _overlaps(_METADATA, s.vma, s.size):
                at = s.lma if _overlaps(_METADATA, s.lma, s.size) else s.vma
                problems.append(f"section {s.name} at 0x{at:08X} lies in the metadata sector "
                                f"(0x{_METADATA.base:08X}-0x{_METADATA.end:08X})")
                continue
            if not region.contains(s.lma, s.size):
                problems.append(f"section {s.name} at 0x{s.lma:08X} (+0x{s.size:X}) is outside "
                                f"{_span(region)}")
                continue
            if s.vma != s.lma and not any(r.contains(s.vma, s.size) for r in ram):
                problems.append(f"section {s.name} runs at 0x{s.vma:08X} (+0x{s.size:X}), outside "
                                f"{_span(region)} and RAM")
        elif not any(r.contains(s.vma, s.size) for r in ram):
            problems.append(f"section {s.name} at 0x{s.vma:08X} (+0x{s.size:X}) is outside RAM: "
                            f"{_span(_SRAM)}, {_span(_CCM)}")


def _check_vectors(img: ElfImage, flash: bytes, region: Region, problems: list[str]) -> None:
    stored = [s.lma for s in img.stored() if s.lma is not None and region.contains(s.lma, s.size)]
    if len(flash) < 8 or min(stored) != region.base:
        why = f"the lowest address stored there is 0x{min(stored):08X}" if stored else "nothing is there"
        problems.append(f"no vector table at the base of {_span(region)}: {why}")
        return
    sp = int.from_bytes(flash[0:4], "little")
    reset = int.from_bytes(flash[4:8], "little")
    problem = stack_pointer_problem(sp)
    if problem:
        problems.append(f"{problem} (vector 0 at 0x{region.base:08X})")
    if not reset & 1:
        problems.append(f"reset handler 0x{reset:08X} has the Thumb bit clear")
    if not region.contains(reset & ~1):
        problems.append(f"reset handler 0x{reset:08X} is outside {_span(region)}")


def _check_info(img: ElfImage, flash: bytes, target: Target, version: tuple[int, int, int] | None,
                build: int | None, problems: list[str]) -> dict[str, Any] | None:
    region = target.region
    slot = target.slot
    assert slot is not None, "only slot images carry an information block"
    want = region.base + INFO_OFFSET
    sec = next((s for s in img.sections if s.name == INFO_SECTION), None)
    if sec is not None and sec.lma != want:
        at = "not stored in flash" if sec.lma is None else f"at 0x{sec.lma:08X}"
        problems.append(f"section {INFO_SECTION} is {at}, expected 0x{want:08X} "
                        f"(slot base + 0x{INFO_OFFSET:X})")
    if len(flash) < INFO_OFFSET + INFO_SIZE:
        problems.append(f"image information block missing: nothing stored at 0x{want:08X}")
        return None
    info = INFO.unpack(flash, INFO_OFFSET)
    if info["magic"] != _C["IMAGE_INFO_MAGIC"]:
        problems.append(f"image information block missing at 0x{want:08X}: ii_magic is "
                        f"0x{info['magic']:08X}, expected 0x{_C['IMAGE_INFO_MAGIC']:08X}")
        return info
    checks: list[tuple[str, int, int, str]] = [
        ("format", info["format"], _C["IMAGE_FORMAT_VERSION"], ""),
        ("slot", info["slot"], slot, f" (slot {SLOTS[slot]})"),
        ("load_addr", info["load_addr"], region.base, f" (base of {region.name})"),
        ("image_size", info["image_size"], _C["IMAGE_SIZE_UNSET"], " (the post-link step fills it)"),
    ]
    if build is not None:
        checks.append(("build", info["build"], build, ""))
    got_version = (info["ver_major"], info["ver_minor"], info["ver_patch"])
    if version is not None and got_version != tuple(version):
        problems.append(f"ii_ver_major.minor.patch is {'.'.join(map(str, got_version))}, "
                        f"expected {'.'.join(map(str, version))}")
    for name, got, expected, note in checks:
        if got != expected:
            hexa = name in ("load_addr", "image_size")
            fmt = (lambda v: f"0x{v:08X}") if hexa else str
            problems.append(f"ii_{name} is {fmt(got)}, expected {fmt(expected)}{note}")
    return info


def _linked_for(img: ElfImage, region: Region) -> Region | None:
    """The other flash region that holds every stored section, if there is one."""
    stored = img.stored()
    for other in LAYOUT.regions.values():
        if other != region and stored and all(other.contains(s.lma or 0, s.size) for s in stored):
            return other
    return None


def _ram_used(img: ElfImage, ram: Region) -> int:
    return sum(s.size for s in img.sections if ram.contains(s.vma, s.size))


def check_elf(path: str | Path, target: Target, *, version: tuple[int, int, int] | None = None,
              build: int | None = None) -> ElfReport:
    """Check one ELF for ``target``; return its usage or raise ElfCheckError listing every problem.

    ``version`` and ``build`` (slot images only) must match the information block when given.
    """
    img = ElfImage.load(path)
    name = img.path.name
    if img.machine != "EM_ARM":
        raise ElfCheckError(name, [f"is built for {img.machine}, expected EM_ARM"])
    region = target.region
    problems: list[str] = []
    _check_sections(img, region, problems)
    flash = img.flash_bytes(region)
    _check_vectors(img, flash, region, problems)
    info = None
    flash_used = len(flash)
    if target.slot is not None:
        info = _check_info(img, flash, target, version, build, problems)
        # The post-link step pads to IMAGE_ALIGN and appends the trailer: count both.
        align = _C["IMAGE_ALIGN"]
        flash_used = len(flash) + (-len(flash) % align) + TRAILER_SIZE
        what = f"image {len(flash)} bytes + trailer {TRAILER_SIZE}"
    else:
        what = f"bootloader {len(flash)} bytes"
    if flash_used > target.limit:
        problems.append(f"{what} = {flash_used} bytes exceeds the {target.limit}-byte limit of "
                        f"{region.name}" + ("" if target.slot is None else " (MAX_IMAGE_SIZE: either slot)"))
    if problems:
        other = _linked_for(img, region)
        if other is not None:
            problems.append(f"it looks linked for {other.name} (0x{other.base:08X}), not {region.name}")
        raise ElfCheckError(name, problems)
    return ElfReport(img.path, target, flash_used, _ram_used(img, _SRAM), _ram_used(img, _CCM), info)
