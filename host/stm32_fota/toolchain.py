"""Find the tools the firmware build needs, and say how to install them when they are missing.

    >>> from stm32_fota.toolchain import check_toolchain
    >>> tc = check_toolchain()            # doctest: +SKIP
    >>> tc.gcc_version                    # doctest: +SKIP
    '12.2.1'
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolchainError

PREFIX = "arm-none-eabi-"
# The target flags of the firmware (stm32/Makefile): newlib must exist for this multilib.
TARGET_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
INSTALL_HINT = ("on Debian or Ubuntu run `sudo apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi make` (or `bash scripts/setup.sh`, which does it for you)")


@dataclass(frozen=True)
class Toolchain:
    gcc: Path
    objcopy: Path
    make: Path
    gcc_version: str

    def tool(self, name: str) -> Path:
        """Another binutils tool next to gcc (``size``, ``objdump``, ...)."""
        p = self.gcc.with_name(PREFIX + name)
        if not p.exists():
            raise ToolchainError(f"Failed to find {PREFIX}{name} next to {self.gcc}: {INSTALL_HINT}")
        return p


def _which(name: str) -> Path:
    found = shutil.which(name)
    if not found:
        raise ToolchainError(f"Failed to find {name} on PATH: {INSTALL_HINT}")
    return Path(found)


def _run(argv: list[str], what: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"Failed to {what}: {e}") from None
    if proc.returncode != 0:
        raise ToolchainError(f"Failed to {what}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout.strip()


def check_toolchain() -> Toolchain:
    """Locate arm-none-eabi-gcc, objcopy, make and newlib; raise ToolchainError with a hint."""
    gcc = _which(PREFIX + "gcc")
    objcopy = _which(PREFIX + "objcopy")
    make = _which("make")
    version = _run([str(gcc), "-dumpversion"], f"run {gcc.name}")
    libc = _run([str(gcc), *TARGET_FLAGS, "-print-file-name=libc.a"], "query the newlib location")
    # gcc echoes the bare name when it cannot find the file in any library directory.
    if not Path(libc).is_absolute() or not Path(libc).exists():
        raise ToolchainError(f"Failed to find newlib (libc.a) for {' '.join(TARGET_FLAGS)}: {INSTALL_HINT}")
    return Toolchain(gcc=gcc, objcopy=objcopy, make=make, gcc_version=version)
