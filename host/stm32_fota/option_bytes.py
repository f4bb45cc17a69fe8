"""Show the STM32's option bytes, and set the two the product wants, through the programmer.

    >>> show_options("auto")                       # doctest: +SKIP
    >>> protect_board("auto")                      # BOR level 3, bootloader sectors write-protected

What the firmware expects (stm32/drivers/option_bytes.c reports the same on USART2 at every boot):
- BOR level 3 (RM0090 3.7.1, BOR_LEV = 00): below 2.7 V the chip is held in reset; with BOR off it
  runs down to 1.8 V, where x32 flash programming (2.7-3.6 V, RM0090 table 7) is not specified.
- nWRP of the bootloader's sectors cleared (RM0090 3.7.4): a firmware bug cannot erase or program
  the bootloader; the update agent never writes there.
- WDG_SW = 1 (software watchdog): the bootloader copes with a hardware one, but a software one is
  started only for a trial boot.
Option bytes take effect at the next reset (or power cycle). STM32CubeProgrammer sets named
fields and leaves the others; OpenOCD's ``stm32f2x options_write`` writes the whole user byte
(BOR_LEV, WDG_SW, nRST_STOP, nRST_STDBY: 0xE0 here), and ``flash protect`` the nWRP bits; st-flash
has no option-byte command for this family, so it is refused with the alternatives named.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from fota_formats.spec import LAYOUT

from .flashing import TOOL_TIMEOUT_S, FlashingError, Runner, Which, find_tool, run_tool

OPENOCD = ["-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg", "-c", "init", "-c", "reset halt"]
# OPTCR bits 7:2 for openocd: nRST_STDBY 1, nRST_STOP 1, WDG_SW 1 (software), BOR_LEV 00 (level 3).
OPENOCD_USER_OPTIONS = 0xE0


def bootloader_sectors() -> range:
    """The sectors that hold the bootloader (fota_formats/spec/layout.toml)."""
    region = LAYOUT.region("bootloader")
    return range(region.first_sector, region.last_sector + 1)


def show_command(tool: str, exe: str) -> list[str]:
    """The command line that prints the option bytes."""
    if tool == "cubeprog":
        return [exe, "-c", "port=SWD", "-ob", "displ"]
    if tool == "openocd":
        return [exe, *OPENOCD, "-c", "stm32f2x options_read 0", "-c", "flash info 0", "-c", "exit"]
    raise FlashingError(_unsupported(tool))


def protect_command(tool: str, exe: str) -> list[str]:
    """The command line that sets BOR level 3 and write-protects the bootloader's sectors."""
    sectors = bootloader_sectors()
    if tool == "cubeprog":
        # STM32CubeProgrammer's F4 fields: BOR_LEV 0 = level 3; nWRPn = 0 protects sector n.
        return [exe, "-c", "port=SWD", "-ob", "BOR_LEV=0", *(f"nWRP{s}=0" for s in sectors)]
    if tool == "openocd":
        return [exe, *OPENOCD, "-c", f"stm32f2x options_write 0 0x{OPENOCD_USER_OPTIONS:02X}",
                "-c", f"flash protect 0 {sectors.start} {sectors.stop - 1} on", "-c", "reset", "-c", "exit"]
    raise FlashingError(_unsupported(tool))


def _unsupported(tool: str) -> str:
    return (f"Failed to reach the option bytes: {tool} cannot read or write them on the STM32F4; use "
            "--tool cubeprog (STM32_Programmer_CLI) or --tool openocd")


def _tool(tool: str, which: Which) -> tuple[str, str]:
    if tool == "auto":   # st-flash cannot do it: only the other two
        for name in ("cubeprog", "openocd"):
            try:
                return find_tool(name, which)
            except FlashingError:
                continue
        raise FlashingError("Failed to reach the option bytes: neither STM32_Programmer_CLI (cubeprog) nor "
                            "openocd is installed or on PATH")
    return find_tool(tool, which)


def _run(cmd: list[str], what: str, runner: Runner) -> str:
    result = runner(cmd, TOOL_TIMEOUT_S)
    if result.code != 0:
        tail = next((x for x in reversed(result.output.strip().splitlines()) if x.strip()),
                    f"exit code {result.code}")
        raise FlashingError(f"Failed to {what}: {tail.strip()}")
    return result.output


def show_options(tool: str = "auto", runner: Runner = run_tool, which: Which = shutil.which,
                 log: Callable[[str], None] = print) -> list[str]:
    """Print the option bytes as the tool reports them; returns the command run."""
    name, exe = _tool(tool, which)
    cmd = show_command(name, exe)
    log(f"flash-stm32: option bytes ({name}):")
    log(_run(cmd, "read the option bytes", runner).rstrip())
    return cmd


def protect_board(tool: str = "auto", runner: Runner = run_tool, which: Which = shutil.which,
                  log: Callable[[str], None] = print) -> list[list[str]]:
    """Set BOR level 3 and write-protect the bootloader's sectors, then show the result."""
    name, exe = _tool(tool, which)
    cmd = protect_command(name, exe)
    sectors = bootloader_sectors()
    log(f"flash-stm32: setting BOR level 3 and write protection of sectors {sectors.start}-"
        f"{sectors.stop - 1} (the bootloader) with {name}; effective after a reset")
    _run(cmd, "write the option bytes", runner)
    return [cmd, show_options(name, runner, which, log)]
