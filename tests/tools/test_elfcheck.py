"""ELF checks: a real build passes; deliberately broken ELF files fail with the expected message.

The broken files are real links of a small Cortex-M4 program (fota_testkit.elf) with one thing
wrong each, or copies of the real firmware ELF with bytes patched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from fota_formats.image import BODY_ALIGN, HDR_SIZE, TLV_AREA_SIZE
from fota_formats.spec import IMAGE, LAYOUT
from fota_testkit.elf import ElfRecipe
from stm32_fota.build import BuildResult
from stm32_fota.elfcheck import TARGETS, check_elf
from stm32_fota.errors import ElfCheckError
from stm32_fota.sizes import format_size_table, size_rows

SLOT_A, SLOT_B = IMAGE.constants["SLOT_A"], IMAGE.constants["SLOT_B"]


@pytest.fixture(scope="module")
def elf_dir(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("elfcheck")


def problems_of(path: Path, target: str, **kw: object) -> list[str]:
    with pytest.raises(ElfCheckError) as e:
        check_elf(path, TARGETS[target], **kw)  # type: ignore[arg-type]
    assert all(line.startswith(f"{path.name}: ") for line in str(e.value).splitlines())
    return e.value.problems


def patched_copy(src: Path, dst: Path, section: str, offset: int, data: bytes) -> Path:
    """Copy an ELF and overwrite bytes of one section's contents."""
    shutil.copyfile(src, dst)
    with src.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(section)
        assert sec is not None, f"{src.name} has no section {section}"
        at = sec["sh_offset"] + offset
    with dst.open("r+b") as f:
        f.seek(at)
        f.write(data)
    return dst


# --- a real build passes -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bootloader", "slot-a", "slot-b"])
def test_real_build_passes(fw_build: BuildResult, name: str) -> None:
    elf = fw_build.build_dir / f"{name}.elf"
    report = check_elf(elf, TARGETS[name])
    assert 0 < report.flash_used <= report.flash_limit
    assert 0 < report.sram_used <= LAYOUT.sram_size
    # The slot images count their TLV areas, signed by post-link: the .bin is exactly that long.
    assert report.flash_used == fw_build.target(name).bin.stat().st_size


def test_real_slot_a_is_not_usable_as_slot_b(fw_build: BuildResult) -> None:
    problems = problems_of(fw_build.build_dir / "slot-a.elf", "slot-b")
    text = "\n".join(problems)
    assert "is outside slot_b (0x08060000-0x080E0000)" in text
    assert "no vector table at 0x08060200 in slot_b" in text
    assert problems[-1] == "it looks linked for slot_a (0x08020000), not slot_b"


def test_real_slot_b_is_not_usable_as_slot_a(fw_build: BuildResult) -> None:
    problems = problems_of(fw_build.build_dir / "slot-b.elf", "slot-a")
    assert any("is outside slot_a (0x08020000-0x08060000)" in p for p in problems)
    assert problems[-1] == "it looks linked for slot_b (0x08060000), not slot_a"


def test_real_slot_image_is_not_a_bootloader(fw_build: BuildResult) -> None:
    problems = problems_of(fw_build.build_dir / "slot-a.elf", "bootloader")
    assert any("is outside bootloader (0x08000000-0x08020000)" in p for p in problems)


def test_real_elf_with_sp_outside_sram_fails(fw_build: BuildResult, tmp_path: Path) -> None:
    bad = patched_copy(fw_build.build_dir / "slot-b.elf", tmp_path / "slot-b.elf", ".isr_vector", 0,
                       (0x10008000).to_bytes(4, "little"))
    assert problems_of(bad, "slot-b") == [
        "initial stack pointer 0x10008000 is outside SRAM (0x20000000-0x20020000) (vector 0 at 0x08060200)"]


def test_real_elf_with_arm_mode_reset_handler_fails(fw_build: BuildResult, tmp_path: Path) -> None:
    src = fw_build.build_dir / "bootloader.elf"
    with src.open("rb") as f:
        data = ELFFile(f).get_section_by_name(".isr_vector").data()
    reset = int.from_bytes(data[4:8], "little")
    bad = patched_copy(src, tmp_path / "bootloader.elf", ".isr_vector", 4, (reset & ~1).to_bytes(4, "little"))
    assert problems_of(bad, "bootloader") == [f"reset handler 0x{reset & ~1:08X} has the Thumb bit clear"]


def test_real_elf_with_a_filled_header_room_fails(fw_build: BuildResult, tmp_path: Path) -> None:
    bad = patched_copy(fw_build.build_dir / "slot-b.elf", tmp_path / "slot-b.elf", ".image_header", 0,
                       b"\x3d\xb8\xf3\x96")
    assert problems_of(bad, "slot-b") == ["the image header room at 0x08060000 is not all zero bytes"]


def test_size_table_of_the_real_build(fw_build: BuildResult) -> None:
    rows = size_rows(fw_build.reports)
    assert [(r.target, r.memory) for r in rows if r.memory.startswith("flash")] == [
        ("bootloader", "flash (bootloader)"), ("slot-a", "flash (slot_a)"), ("slot-b", "flash (slot_b)")]
    for r in rows:
        assert r.used + r.free == r.limit
    limits = {r.target: r.limit for r in rows if r.memory.startswith("flash")}
    assert limits == {"bootloader": LAYOUT.region("bootloader").size, "slot-a": LAYOUT.max_image_size,
                      "slot-b": LAYOUT.max_image_size}
    table = format_size_table(fw_build.reports)
    assert table.splitlines()[0].split() == ["target", "memory", "used", "limit", "free", "used"]
    assert len(table.splitlines()) == 1 + len(rows)


# --- small ELF files, broken on purpose ------------------------------------------------------------

def test_small_good_elf_passes(elf_dir: Path) -> None:
    elf = ElfRecipe().link(elf_dir, "good")
    report = check_elf(elf, TARGETS["slot-b"])
    assert report.flash_used > HDR_SIZE + TLV_AREA_SIZE


def test_wrong_base(elf_dir: Path) -> None:
    elf = ElfRecipe(base_offset=0x20000).link(elf_dir, "wrong-base")
    problems = problems_of(elf, "slot-b")
    assert problems[0] == ("no vector table at 0x08060200 in slot_b (0x08060000-0x080E0000): "
                           "the lowest address stored there is 0x08080000")
    assert ("section .image_header is at 0x08080000 (+0x200), expected 0x08060000 (+0x200): the room for "
            "the image header") in problems


def test_slot_a_elf_checked_as_slot_b(elf_dir: Path) -> None:
    elf = ElfRecipe(region="slot_a").link(elf_dir, "slot-a")
    check_elf(elf, TARGETS["slot-a"])
    problems = problems_of(elf, "slot-b")
    assert "section .isr_vector at 0x08020200 (+0x8) is outside slot_b (0x08060000-0x080E0000)" in problems
    assert problems[-1] == "it looks linked for slot_a (0x08020000), not slot_b"


def test_oversize(elf_dir: Path) -> None:
    # Slot B's region holds 512 KB, but an image must fit 256 KB to run from either slot.
    elf = ElfRecipe(pad=LAYOUT.max_image_size).link(elf_dir, "oversize")
    (problem,) = problems_of(elf, "slot-b")
    assert problem.startswith("image ")
    assert problem.endswith(f"exceeds the {LAYOUT.max_image_size}-byte limit of slot_b "
                            f"(MAX_IMAGE_SIZE: either slot)")


def test_just_fits(elf_dir: Path) -> None:
    base = check_elf(ElfRecipe().link(elf_dir, "base"), TARGETS["slot-b"]).flash_used
    # flash_used counts image + padding + TLV areas; grow the image to exactly the limit.
    elf = ElfRecipe(pad=LAYOUT.max_image_size - base).link(elf_dir, "fits")
    assert check_elf(elf, TARGETS["slot-b"]).flash_used == LAYOUT.max_image_size
    elf = ElfRecipe(pad=LAYOUT.max_image_size - base + 4).link(elf_dir, "just-over")
    (problem,) = problems_of(elf, "slot-b")
    assert problem.endswith("(MAX_IMAGE_SIZE: either slot)")


def test_missing_header_room(elf_dir: Path) -> None:
    elf = ElfRecipe(header=0).link(elf_dir, "no-header")
    problems = problems_of(elf, "slot-b")
    assert problems[0].startswith("no vector table at 0x08060200 in slot_b")
    assert ("section .image_header is missing, expected 0x08060000 (+0x200): the room for the image "
            "header") in problems


def test_header_room_not_zero(elf_dir: Path) -> None:
    elf = ElfRecipe(header_fill=0xFF).link(elf_dir, "header-ff")
    assert problems_of(elf, "slot-b") == ["the image header room at 0x08060000 is not all zero bytes"]


def test_section_in_the_metadata_sector(elf_dir: Path) -> None:
    elf = ElfRecipe(meta=True).link(elf_dir, "meta")
    assert problems_of(elf, "slot-b") == ["section .meta at 0x080E0000 lies in the metadata sector "
                                          "(0x080E0000-0x08100000)"]


def test_ram_sections_outside_ram(elf_dir: Path) -> None:
    elf = ElfRecipe(ram_base=0x30000000).link(elf_dir, "ram-elsewhere")
    problems = problems_of(elf, "slot-b")
    assert len(problems) == 2
    assert problems[0].startswith("section .data runs at 0x30000000 (+0x4), outside slot_b")
    assert problems[1] == ("section .bss at 0x30000004 (+0x4) is outside RAM: sram (0x20000000-0x20020000), "
                           "ccm (0x10000000-0x10010000)")


def test_ram_sections_in_ccm_pass(elf_dir: Path) -> None:
    elf = ElfRecipe(ram_base=LAYOUT.ccm_base).link(elf_dir, "ram-ccm")
    report = check_elf(elf, TARGETS["slot-b"])
    assert (report.sram_used, report.ccm_used) == (0, 8)


def test_tlv_areas_and_padding_counted_in_the_size(elf_dir: Path) -> None:
    elf = ElfRecipe().link(elf_dir, "count")
    raw = elf_dir / "count.raw"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(raw)], check=True, timeout=30)
    n = raw.stat().st_size - HDR_SIZE
    body = (n + BODY_ALIGN - 1) // BODY_ALIGN * BODY_ALIGN
    assert check_elf(elf, TARGETS["slot-b"]).flash_used == HDR_SIZE + body + TLV_AREA_SIZE


def test_not_an_elf(tmp_path: Path) -> None:
    bogus = tmp_path / "slot-b.elf"
    bogus.write_bytes(b"this is not an ELF file")
    (problem,) = problems_of(bogus, "slot-b")
    assert problem.startswith("is not a valid ELF file")


def test_missing_file(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "slot-b.elf", "slot-b")
    assert problem.startswith("cannot be read: No such file")
