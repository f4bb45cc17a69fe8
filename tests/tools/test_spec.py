"""The single definitions (spec/*.toml) and their mirrors agree: C headers compiled by the host gcc,
linker memory maps, the bridge constants, and the layout itself (sectors tile the regions)."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
from fota_formats.spec import IMAGE, LAYOUT, PROTOCOL, StructDef
from stm32_fota import gen

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "stm32" / "gen"
STRUCTS: list[tuple[str, StructDef]] = [
    *(("fota_image.h", s) for s in IMAGE.structs.values()),
    *(("fota_proto.h", s) for s in PROTOCOL.structs.values()),
]


def test_generated_files_are_up_to_date() -> None:
    stale = [str(p.relative_to(ROOT)) for p in gen.stale()]
    assert stale == [], f"stale generated files (run `invoke gen`): {stale}"


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Compile a host program against the generated headers; parse what it prints: name -> value."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no host C compiler (gcc): run scripts/setup.sh")
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "fota_layout.h"',
             '#include "fota_image.h"', '#include "fota_proto.h"', "int main(void) {"]
    def emit(key: str, expr: str) -> None:
        lines.append(f'    printf("{key} %lu\\n", (unsigned long)({expr}));')

    for _, s in STRUCTS:
        c = f"struct fota_{s.name}"
        emit(f"sizeof {s.name}", f"sizeof({c})")
        for f in s.fields:
            emit(f"offsetof {s.name}.{f.name}", f"offsetof({c}, {s.prefix}{f.name})")
            emit(f"sizeof {s.name}.{f.name}", f"sizeof((({c} *)0)->{s.prefix}{f.name})")
    for r in LAYOUT.regions.values():
        for what in ("BASE", "SIZE", "FIRST_SECTOR", "LAST_SECTOR"):
            emit(f"{r.name}.{what.lower()}", f"FOTA_REGION_{r.name.upper()}_{what}")
    emit("max_image_size", "FOTA_MAX_IMAGE_SIZE")
    for k in IMAGE.constants:
        emit(f"const {k}", f"FOTA_{k}")
    lines += ["    return 0;", "}", ""]
    d = tmp_path_factory.mktemp("spec_c")
    src, exe = d / "sizes.c", d / "sizes"
    src.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run([gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{GEN}", str(src), "-o", str(exe)],
                   check=True, capture_output=True, text=True, timeout=60)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=10).stdout
    values: dict[str, int] = {}
    for line in out.splitlines():
        *key, value = line.split()
        values[" ".join(key)] = int(value)
    return values


@pytest.mark.parametrize(("header", "s"), STRUCTS, ids=[s.name for _, s in STRUCTS])
def test_python_struct_matches_c_layout(c_layout: dict[str, int], header: str, s: StructDef) -> None:
    assert c_layout[f"sizeof {s.name}"] == s.size, f"{header}: sizeof(struct fota_{s.name})"
    assert len(s.pack()) == s.size
    for f in s.fields:
        assert c_layout[f"offsetof {s.name}.{f.name}"] == f.offset, f"{s.name}.{f.name} offset"
        assert c_layout[f"sizeof {s.name}.{f.name}"] == f.size, f"{s.name}.{f.name} size"


def test_c_layout_constants_match_spec(c_layout: dict[str, int]) -> None:
    for r in LAYOUT.regions.values():
        assert c_layout[f"{r.name}.base"] == r.base
        assert c_layout[f"{r.name}.size"] == r.size
        assert c_layout[f"{r.name}.first_sector"] == r.first_sector
        assert c_layout[f"{r.name}.last_sector"] == r.last_sector
    assert c_layout["max_image_size"] == LAYOUT.max_image_size
    for k, v in IMAGE.constants.items():
        assert c_layout[f"const {k}"] == v, k


_MEM_RE = re.compile(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),"
                     r"\s*LENGTH\s*=\s*(0x[0-9A-Fa-f]+)", re.MULTILINE)


@pytest.mark.parametrize("region", ["bootloader", "slot_a", "slot_b"])
def test_linker_memory_regions_match_layout(region: str) -> None:
    text = (GEN / f"memory_{region}.ld").read_text(encoding="utf-8")
    mem = {name: (int(o, 16), int(n, 16)) for name, o, n in _MEM_RE.findall(text)}
    r = LAYOUT.region(region)
    assert mem["FLASH"] == (r.base, r.size)
    assert mem["RAM"] == (LAYOUT.sram_base, LAYOUT.sram_size)
    assert mem["CCM"] == (LAYOUT.ccm_base, LAYOUT.ccm_size)
    symbols = dict(re.findall(r"^(\w+)\s*=\s*(0x[0-9A-Fa-f]+);", text, re.MULTILINE))
    assert int(symbols["__metadata_base"], 16) == LAYOUT.region("metadata").base
    assert int(symbols["__image_hdr_size"], 16) == IMAGE.constants["IMAGE_HDR_SIZE"]
    assert int(symbols["__image_tlv_area_size"], 16) == IMAGE.constants["IMAGE_TLV_AREA_SIZE"]
    assert int(symbols["__max_image_size"], 16) == min(r.size, LAYOUT.max_image_size)


def test_bridge_constants_match_spec() -> None:
    mpy = runpy.run_path(str(ROOT / "esp32_mpy" / "fota_const.py"))
    for r in LAYOUT.regions.values():
        assert mpy[f"{r.name.upper()}_BASE"] == r.base
        assert mpy[f"{r.name.upper()}_SIZE"] == r.size
    assert mpy["MAX_IMAGE_SIZE"] == LAYOUT.max_image_size
    for spec in (IMAGE, PROTOCOL):
        for k, v in spec.constants.items():
            assert mpy[k] == v, k
        for s in spec.structs.values():
            assert mpy[f"{s.name.upper()}_FMT"] == s.fmt
            assert mpy[f"{s.name.upper()}_SIZE"] == s.size


def test_sectors_tile_the_flash() -> None:
    addr = LAYOUT.flash_base
    for i, s in enumerate(LAYOUT.sectors):
        assert s.number == i
        assert s.base == addr, f"sector {i} starts at 0x{s.base:08X}, expected 0x{addr:08X}"
        addr += s.size
    assert addr == LAYOUT.flash_base + LAYOUT.flash_size


def test_sectors_tile_each_region_and_regions_tile_the_flash() -> None:
    covered = []
    for r in LAYOUT.regions.values():
        sectors = LAYOUT.sectors_of(r)
        assert [s.number for s in sectors] == list(range(r.first_sector, r.last_sector + 1))
        assert sectors[0].base == r.base, r.name
        assert sum(s.size for s in sectors) == r.size, r.name
        covered += [s.number for s in sectors]
    assert sorted(covered) == [s.number for s in LAYOUT.sectors], "every sector in exactly one region"


def test_an_image_fits_either_slot() -> None:
    for name in ("slot_a", "slot_b"):
        assert LAYOUT.region(name).size >= LAYOUT.max_image_size, name
    c = IMAGE.constants
    assert c["IMAGE_HDR_SIZE"] + c["IMAGE_TLV_AREA_SIZE"] < LAYOUT.max_image_size
    assert c["IMAGE_HDR_SIZE"] % 512 == 0, "the vector table after the header must be VTOR-aligned"


def test_tlv_area_sizes_add_up() -> None:
    """IMAGE_TLV_AREA_SIZE (what the linker keeps free) is what imgtool writes for our TLVs."""
    c, tlv, info = IMAGE.constants, IMAGE.structs["image_tlv"].size, IMAGE.structs["image_tlv_info"].size
    assert c["IMAGE_PROT_TLV_SIZE"] == info + 2 * (tlv + 4)             # SEC_CNT, SLOT
    assert c["IMAGE_TLV_AREA_SIZE"] == c["IMAGE_PROT_TLV_SIZE"] + info + (tlv + 32) * 2 + tlv + 64
