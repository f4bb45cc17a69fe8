"""Program the bootloader and the Slot-A image into an STM32 board through SWD.

    >>> from stm32_fota.flashing import flash_board
    >>> flash_board(Path("build"), tool="auto")            # doctest: +SKIP

On a board, the first installed tool of STM32CubeProgrammer's ``STM32_Programmer_CLI``, ``st-flash``
(stlink) and OpenOCD writes ``bootloader.bin`` at the bootloader's base and ``slot-a.bin`` at
Slot A's base (addresses from the flash layout, fota_formats/spec/layout.toml), each verified.
The metadata sector is left alone on a board: a fresh chip has it erased, and a board that ran the
product before keeps its journal (erase it with the tool's own erase command when you want a clean
start). The twin's flash file is written by ``fota_lab.flashing.flash_sim``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fota_formats.spec import LAYOUT

from .errors import FotaError

TOOLS = ("cubeprog", "st-flash", "openocd")
EXECUTABLES = {"cubeprog": "STM32_Programmer_CLI", "st-flash": "st-flash", "openocd": "openocd"}
TOOL_TIMEOUT_S = 120.0        # a full 1 MB program + verify over ST-LINK takes well under a minute
ERASED = 0xFF


class FlashingError(FotaError):
    """The programmer is missing, failed, or the build lacks an image."""


@dataclass(frozen=True)
class Piece:
    """One binary and where it goes."""

    name: str        # "bootloader", "slot-a"
    path: Path
    address: int


@dataclass
class ToolRun:
    code: int
    output: str


Runner = Callable[[Sequence[str], float], ToolRun]
Which = Callable[[str], str | None]


def run_tool(cmd: Sequence[str], timeout_s: float) -> ToolRun:
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return ToolRun(-1, f"no result within {timeout_s:.0f} s (is the probe connected?)")
    except OSError as e:
        return ToolRun(-1, str(e))
    return ToolRun(p.returncode, p.stdout + p.stderr)


def pieces(build_dir: Path) -> list[Piece]:
    """bootloader.bin and slot-a.bin of a build, with their flash addresses; checked to exist and fit."""
    wanted = [("bootloader", "bootloader"), ("slot-a", "slot_a")]
    out = []
    for name, region_name in wanted:
        region = LAYOUT.region(region_name)
        path = build_dir / f"{name}.bin"
        if not path.is_file():
            raise FlashingError(f"Failed to flash the STM32: {path} does not exist (run `invoke build`)")
        size = path.stat().st_size
        if size == 0 or size > region.size:
            raise FlashingError(f"Failed to flash the STM32: {path} has {size} bytes, region {region_name} "
                                f"holds 1..{region.size}")
        out.append(Piece(name, path, region.base))
    return out


def command(tool: str, exe: str, piece: Piece) -> list[str]:
    """The command line that writes and verifies one piece with ``tool`` (executable ``exe``)."""
    addr = f"0x{piece.address:08X}"
    if tool == "cubeprog":
        return [exe, "-c", "port=SWD", "-w", str(piece.path), addr, "-v"]
    if tool == "st-flash":
        return [exe, "write", str(piece.path), addr]
    if tool == "openocd":
        # OpenOCD's Tcl: a path with spaces needs braces.
        return [exe, "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
                "-c", f"program {{{piece.path}}} {addr} verify", "-c", "reset", "-c", "exit"]
    raise FlashingError(f"Failed to flash the STM32: unknown tool {tool!r} (one of auto, {', '.join(TOOLS)})")


def find_tool(tool: str = "auto", which: Which = shutil.which) -> tuple[str, str]:
    """(tool name, executable path) of the requested tool, or of the first installed one for auto."""
    if tool != "auto" and tool not in TOOLS:
        raise FlashingError(f"Failed to flash the STM32: unknown tool {tool!r} "
                            f"(one of auto, {', '.join(TOOLS)})")
    for name in (TOOLS if tool == "auto" else (tool,)):
        exe = which(EXECUTABLES[name])
        if exe:
            return name, exe
    if tool != "auto":
        raise FlashingError(f"Failed to flash the STM32: {EXECUTABLES[tool]} ({tool}) is not installed "
                            "or not on PATH")
    raise FlashingError(
        "Failed to flash the STM32: no programmer found; install one of STM32CubeProgrammer "
        "(STM32_Programmer_CLI), stlink (st-flash) or OpenOCD and put it on PATH, or use --sim FLASHFILE "
        "to program the STM32 twin")


def flash_board(build_dir: Path, tool: str = "auto", runner: Runner = run_tool, which: Which = shutil.which,
                log: Callable[[str], None] = print) -> list[list[str]]:
    """Program and verify the bootloader, then Slot A, with an installed tool; returns the commands run.

    openocd's `reset` at the end of each command starts the board; the others leave it halted or
    running as the tool does (press reset, or power-cycle, after st-flash).
    """
    parts = pieces(build_dir)
    name, exe = find_tool(tool, which)
    done = []
    for piece in parts:
        cmd = command(name, exe, piece)
        log(f"flash-stm32: {piece.name}.bin ({piece.path.stat().st_size} bytes) -> 0x{piece.address:08X} "
            f"with {name}")
        result = runner(cmd, TOOL_TIMEOUT_S)
        if result.code != 0:
            tail = next((x for x in reversed(result.output.strip().splitlines()) if x.strip()),
                        f"exit code {result.code}")
            raise FlashingError(f"Failed to write {piece.name}.bin at 0x{piece.address:08X} with {name}: "
                                f"{tail.strip()}")
        done.append(cmd)
    return done
