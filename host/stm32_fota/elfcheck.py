"""Check a linked firmware ELF against the flash layout before it becomes an image.

    >>> from stm32_fota.elfcheck import TARGETS, check_elf
    >>> r = check_elf("build/slot-b.elf", TARGETS["slot-b"])                          # doctest: +SKIP
    >>> r.flash_used                                                                    # doctest: +SKIP
    9824

The checks: a slot image starts with IMAGE_HDR_SIZE zero bytes (section ``.image_header``, the
room for the MCUboot header that post-link signing writes) and its vector table follows them; the
bootloader's vector table sits at its region base. The initial stack pointer lies in SRAM; the
reset handler lies inside the region with the Thumb bit set; every loadable section is stored
inside its flash region and runs there or in RAM (SRAM, CCM); nothing touches the metadata sector;
the image plus its TLV areas fits the slot and 256 KB. Checking a Slot-A ELF as Slot-B fails on
the base and the vectors alike. The version is not in the ELF: imgtool writes it into the header.

Every problem found is collected; :class:`ElfCheckError` lists them all, each prefixed with the
file name, e.g. ``slot-b.elf: section .text at 0x08020000 is outside slot_b (0x08060000-0x080E0000)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from fota_formats.image import BODY_ALIGN, HDR_SIZE, TLV_AREA_SIZE, slot_limit, stack_pointer_problem
from fota_formats.spec import IMAGE, LAYOUT, Region

from .errors import ElfCheckError

_C = IMAGE.constants
HEADER_SECTION = ".image_header"


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
        """Largest flash footprint allowed: image + TLVs for a slot, the region for the bootloader."""
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
    """What a passing ELF uses: flash bytes (with the TLV areas for a slot image) and RAM bytes."""

    path: Path
    target: Target
    flash_used: int
    sram_used: int
    ccm_used: int

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


def _check_vectors(img: ElfImage, flash: bytes, region: Region, at: int, problems: list[str]) -> None:
    """The vector table at ``at`` bytes from the region's base (the header's size for a slot)."""
    stored = [s.lma for s in img.stored() if s.lma is not None and region.contains(s.lma, s.size)]
    if len(flash) < at + 8 or min(stored) != region.base:
        why = f"the lowest address stored there is 0x{min(stored):08X}" if stored else "nothing is there"
        problems.append(f"no vector table at 0x{region.base + at:08X} in {_span(region)}: {why}")
        return
    sp = int.from_bytes(flash[at:at + 4], "little")
    reset = int.from_bytes(flash[at + 4:at + 8], "little")
    problem = stack_pointer_problem(sp)
    if problem:
        problems.append(f"{problem} (vector 0 at 0x{region.base + at:08X})")
    if not reset & 1:
        problems.append(f"reset handler 0x{reset:08X} has the Thumb bit clear")
    if not region.contains(reset & ~1):
        problems.append(f"reset handler 0x{reset:08X} is outside {_span(region)}")


def _check_header_room(img: ElfImage, flash: bytes, target: Target, problems: list[str]) -> None:
    """The IMAGE_HDR_SIZE zero bytes at the slot base that imgtool writes the header into."""
    region = target.region
    sec = next((s for s in img.sections if s.name == HEADER_SECTION), None)
    if sec is None or sec.lma != region.base or sec.size != HDR_SIZE:
        at = "missing" if sec is None else f"at 0x{sec.lma or 0:08X} (+0x{sec.size:X})"
        problems.append(f"section {HEADER_SECTION} is {at}, expected 0x{region.base:08X} (+0x{HDR_SIZE:X}): "
                        "the room for the image header")
        return
    if any(flash[:HDR_SIZE]):
        problems.append(f"the image header room at 0x{region.base:08X} is not all zero bytes")


def _linked_for(img: ElfImage, region: Region) -> Region | None:
    """The other flash region that holds every stored section, if there is one."""
    stored = img.stored()
    for other in LAYOUT.regions.values():
        if other != region and stored and all(other.contains(s.lma or 0, s.size) for s in stored):
            return other
    return None


def _ram_used(img: ElfImage, ram: Region) -> int:
    return sum(s.size for s in img.sections if ram.contains(s.vma, s.size))


def check_elf(path: str | Path, target: Target) -> ElfReport:
    """Check one ELF for ``target``; return its usage or raise ElfCheckError listing every problem."""
    img = ElfImage.load(path)
    name = img.path.name
    if img.machine != "EM_ARM":
        raise ElfCheckError(name, [f"is built for {img.machine}, expected EM_ARM"])
    region = target.region
    problems: list[str] = []
    _check_sections(img, region, problems)
    flash = img.flash_bytes(region)
    _check_vectors(img, flash, region, 0 if target.slot is None else HDR_SIZE, problems)
    flash_used = len(flash)
    if target.slot is not None:
        _check_header_room(img, flash, target, problems)
        # The post-link step pads to IMAGE_BODY_ALIGN and appends the TLV areas: count both.
        flash_used = len(flash) + (-(len(flash) - HDR_SIZE) % BODY_ALIGN) + TLV_AREA_SIZE
        what = f"image {len(flash)} bytes + TLV areas {TLV_AREA_SIZE}"
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
    return ElfReport(img.path, target, flash_used, _ram_used(img, _SRAM), _ram_used(img, _CCM))
