"""Image loading: a .bin goes where the .hex or .elf beside it says; .hex and .elf carry addresses."""

from __future__ import annotations

import shutil

import pytest
from stm32_twin import Stm32Twin, TwinError
from stm32_twin.cli import SimOptions, run_sim


def flash_after(*steps) -> bytes:  # type: ignore[no-untyped-def]
    with Stm32Twin() as board:
        for step in steps:
            step(board)
        return board.flash_snapshot()


def test_bin_hex_and_elf_of_one_build_program_the_same_flash(fw_build, tmp_path) -> None:
    d = fw_build.build_dir
    from_build = flash_after(lambda b: b.load_build(d, slot_b=False))
    from_hex = flash_after(lambda b: b.load_image(d / "bootloader.hex"),
                           lambda b: b.load_image(d / "slot-a.hex"))
    assert from_hex == from_build
    # Without its .hex, a .bin takes the lowest load address of its .elf.
    for suffix in (".bin", ".elf"):
        shutil.copy(d / f"slot-a{suffix}", tmp_path / f"slot-a{suffix}")
    from_elf_address = flash_after(lambda b: b.load_image(d / "bootloader.bin"),
                                   lambda b: b.load_bin(tmp_path / "slot-a.bin"))
    assert from_elf_address == from_build
    # The bootloader's ELF segments are its .bin (no post-link trailer on the bootloader).
    assert flash_after(lambda b: b.load_image(d / "bootloader.elf")) == \
        flash_after(lambda b: b.load_bin(d / "bootloader.bin"))


def test_a_bin_alone_needs_its_address(fw_build, tmp_path) -> None:
    lonely = tmp_path / "image.bin"
    shutil.copy(fw_build.build_dir / "slot-b.bin", lonely)
    with Stm32Twin() as board, pytest.raises(TwinError, match="address is unknown"):
        board.load_bin(lonely)
    out: list[str] = []
    flash = tmp_path / "flash.bin"
    run_sim(SimOptions(build_dir=str(fw_build.build_dir), flash=str(flash), run_ms=50), lambda s: None)
    run_sim(SimOptions(flash=str(flash), slot_b=f"{lonely}@0x08060000", run_ms=100), out.append)
    # Slot A is the journal's confirmed slot, checked by its CRC; slot B then only gets the cheap
    # checks (information block, trailer, vectors), which an image that is not there would fail.
    assert any("boot: slot B not checked v" in line for line in out), out
