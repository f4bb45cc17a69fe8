"""Fixtures of the twin tests: the small test programs of tests/twin/progs, built once per session
with the ARM toolchain, and a helper that boots one of them on a fresh twin."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from stm32_twin import Stm32Twin

PROGS = Path(__file__).parent / "progs"
CONFIG_ADDR = 0x0800_3F00  # a word the programs read to choose a variant
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c11", "-O2",
          "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-nostdlib", "-g"]


@pytest.fixture(scope="session")
def progs(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> ELF path of every test program (the .bin is beside it)."""
    out = tmp_path_factory.mktemp("twin-progs")
    built = {}
    for src in sorted(PROGS.glob("*.c")):
        if src.stem == "lib":
            continue
        elf = out / f"{src.stem}.elf"
        cmd = ["arm-none-eabi-gcc", *CFLAGS, "-T", str(PROGS / "prog.ld"), str(PROGS / "lib.c"), str(src),
               "-o", str(elf), "-lgcc"]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert r.returncode == 0, f"Failed to build test program {src.name}:\n{r.stderr}"
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(elf.with_suffix(".bin"))],
                       check=True)
        built[src.stem] = elf
    return built


@pytest.fixture
def boot(progs: dict[str, Path]) -> Callable[..., Stm32Twin]:
    """boot("flash", config=1, strict=False) -> a powered twin running that program."""
    boards: list[Stm32Twin] = []

    def _boot(name: str, config: int | None = None, power: bool = True, **kw: object) -> Stm32Twin:
        board = Stm32Twin(**kw)  # type: ignore[arg-type]
        boards.append(board)
        board.load_bin(progs[name].with_suffix(".bin"), 0x0800_0000)
        board.load_elf_symbols(progs[name])
        if config is not None:
            board.load_bytes(config.to_bytes(4, "little"), CONFIG_ADDR)
        if power:
            board.power_on()
        return board

    yield _boot  # type: ignore[misc]
    for b in boards:
        b.close()
