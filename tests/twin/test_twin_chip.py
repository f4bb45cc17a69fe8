"""The twin knows its chip from RM0090 alone, and the product's flash layout is checked against it.

If the twin took its sectors from the product's layout.toml, a wrong sector there would be agreed
on by the firmware and the twin alike. Here the twin's sectors come from stm32_twin.chip, and
``layout_mismatches`` (a test helper: neither the twin nor the product) compares the two.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from types import ModuleType

import stm32_twin
from fota_testkit.stm32twin import layout_mismatches
from stm32_twin import Stm32Twin, chip

PROJECT_PACKAGES = ("stm32_fota", "fota_formats", "fota_server", "fota_lab", "fota_s3", "esp32_twin")
TWIN_DIR = Path(stm32_twin.__file__).parent


def product_spec() -> ModuleType:
    """The product's spec loader (imported here only: the twin must not)."""
    from fota_formats import spec

    return spec


def load_layout(spec: ModuleType, path: Path) -> object:
    """A layout.toml file through the product's loader."""
    return spec._layout(tomllib.loads(path.read_text(encoding="utf-8")))


def test_the_twin_imports_nothing_of_the_project() -> None:
    for src in sorted(TWIN_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(src.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad = [n for n in names if n.split(".")[0] in PROJECT_PACKAGES]
            assert not bad, f"{src.relative_to(TWIN_DIR)}:{node.lineno} imports {bad}"
    # And at run time, every module of the package loaded in a fresh interpreter:
    code = ("import pkgutil, sys, stm32_twin\n"
            "for m in pkgutil.walk_packages(stm32_twin.__path__, 'stm32_twin.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        __import__(m.name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {PROJECT_PACKAGES!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


def test_the_twin_erases_the_sectors_of_its_chip_model() -> None:
    """Every sector erase through FLASH_CR (SER, SNB, STRT) clears exactly the chip's sector."""
    board = Stm32Twin()
    flash = board.flash
    board.restore_flash(bytes(chip.FLASH_SIZE))
    flash.write(0x04, 0x4567_0123, 0xFFFF_FFFF)      # FLASH_KEYR unlock (RM0090 3.5.1)
    flash.write(0x04, 0xCDEF_89AB, 0xFFFF_FFFF)
    for s in chip.SECTORS:
        cr = (1 << 16) | (2 << 8) | (s.number << 3) | (1 << 1)    # STRT, PSIZE x32, SNB, SER
        flash.write(0x10, cr, 0xFFFF_FFFF)
        assert flash.op is not None and flash.op.kind == "erase"
        board.sched.advance(flash.op.end_ps)
        data = board.flash_snapshot()
        first = data.index(0xFF)
        erased = data.rindex(0xFF) + 1 - first
        assert (chip.FLASH_BASE + first, erased) == (s.base, s.size), f"sector {s.number}"
        board.restore_flash(bytes(chip.FLASH_SIZE))
    assert [(s.number, s.size // 1024) for s in chip.SECTORS] == \
        [(0, 16), (1, 16), (2, 16), (3, 16), (4, 64)] + [(n, 128) for n in range(5, 12)]
    size_kb = int.from_bytes(board.read_memory(chip.FLASH_SIZE_REG, 2), "little")
    assert size_kb * 1024 == chip.FLASH_SIZE == 1024 * 1024
    board.close()


def test_the_product_layout_agrees_with_the_chip() -> None:
    assert layout_mismatches(product_spec().LAYOUT) == []


def test_a_wrong_sector_in_a_copy_of_the_layout_is_caught(tmp_path: Path) -> None:
    spec = product_spec()
    text = resources.files(spec.__name__).joinpath("layout.toml").read_text(encoding="utf-8")
    # Sector 5 made 64 KB instead of 128 KB (as if the 64 KB sector 4 had been copied).
    sector5 = r"\[\s*5\s*,\s*(0x[0-9A-Fa-f_]+)\s*,\s*0x[0-9A-Fa-f_]+\s*\]"
    wrong, n = re.subn(sector5, r"[5, \1, 0x10000]", text)
    assert n == 1, "sector 5 not found in layout.toml"
    copy = tmp_path / "layout.toml"
    copy.write_text(wrong, encoding="utf-8")
    assert layout_mismatches(load_layout(spec, copy)) == [
        "sector 5: layout 0x08020000 + 0x10000, chip 0x08020000 + 0x20000 (RM0090 Table 5)"]
