"""Program the bootloader and the Slot-A image into an STM32: a real board through SWD, or the twin.

    >>> from stm32_fota.flashing import flash_board, flash_sim
    >>> flash_board(Path("build"), tool="auto")            # doctest: +SKIP
    >>> flash_sim(Path("build"), Path("build/demo/flash.bin"))  # doctest: +SKIP

On a board, the first installed tool of STM32CubeProgrammer's ``STM32_Programmer_CLI``, ``st-flash``
(stlink) and OpenOCD writes ``bootloader.bin`` at the bootloader's base and ``slot-a.bin`` at
Slot A's base (addresses from the flash layout, host/stm32_fota/spec/layout.toml), each verified.
The metadata sector is left alone on a board: a fresh chip has it erased, and a board that ran the
product before keeps its journal (erase it with the tool's own erase command when you want a clean
start). ``flash_sim`` writes the STM32 twin's flash file instead (a raw 1 MB image of the flash,
see ``Stm32Twin(flash_file=...)``): everything else is erased, so the bootloader finds an empty
journal and boots Slot A.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import FotaError
from .spec import LAYOUT

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


def flash_sim(build_dir: Path, flash_file: Path, log: Callable[[str], None] = print) -> Path:
    """Write the twin's flash file: bootloader and Slot A, every other byte erased (0xFF)."""
    from stm32_twin import Stm32Twin
    from stm32_twin.errors import TwinError

    parts = pieces(build_dir)
    try:
        flash_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlashingError(f"Failed to create {flash_file.parent}: {e.strerror}") from None
    try:
        board = Stm32Twin(flash_file)
        try:
            board.restore_flash(bytes([ERASED]) * LAYOUT.flash_size)
            for piece in parts:
                board.load_bin(piece.path, piece.address)
                log(f"flash-stm32: {piece.name}.bin ({piece.path.stat().st_size} bytes) -> "
                    f"0x{piece.address:08X} in {flash_file}")
        finally:
            board.close()
    except TwinError as e:
        raise FlashingError(f"Failed to write the twin's flash file {flash_file}: {e}") from None
    return flash_file
