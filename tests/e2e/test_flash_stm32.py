"""`invoke flash-stm32`: the programmer command lines (through a fake runner: no probe here), the
messages when no tool is installed or a tool fails, and --sim for real on the STM32 twin."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from fota_formats.spec import LAYOUT
from fota_lab.devices import decode_journal
from fota_lab.flashing import flash_sim
from stm32_fota.build import BuildResult
from stm32_fota.flashing import FlashingError, ToolRun, flash_board

BOOT = f"0x{LAYOUT.region('bootloader').base:08X}"
SLOT_A = f"0x{LAYOUT.region('slot_a').base:08X}"


class FakeRunner:
    def __init__(self, fail_at: int = 0, output: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail_at = fail_at
        self.output = output

    def __call__(self, cmd: Sequence[str], timeout_s: float) -> ToolRun:
        self.calls.append(list(cmd))
        assert timeout_s > 0
        if len(self.calls) == self.fail_at:
            return ToolRun(1, self.output)
        return ToolRun(0, "ok")


def only(*names: str):  # type: ignore[no-untyped-def]
    return lambda exe: f"/opt/bin/{exe}" if exe in names else None


@pytest.fixture
def build_dir(fw_build: BuildResult) -> Path:
    return fw_build.build_dir


def test_cubeprog_writes_and_verifies_each_piece_at_its_address(build_dir: Path) -> None:
    run = FakeRunner()
    every = only("STM32_Programmer_CLI", "st-flash", "openocd")
    flash_board(build_dir, "auto", run, every, log=lambda _: None)
    exe = "/opt/bin/STM32_Programmer_CLI"
    assert run.calls == [
        [exe, "-c", "port=SWD", "-w", str(build_dir / "bootloader.bin"), BOOT, "-v"],
        [exe, "-c", "port=SWD", "-w", str(build_dir / "slot-a.bin"), SLOT_A, "-v"]]


def test_auto_falls_back_to_st_flash_then_openocd(build_dir: Path) -> None:
    run = FakeRunner()
    flash_board(build_dir, "auto", run, only("st-flash", "openocd"), log=lambda _: None)
    assert run.calls == [["/opt/bin/st-flash", "write", str(build_dir / "bootloader.bin"), BOOT],
                         ["/opt/bin/st-flash", "write", str(build_dir / "slot-a.bin"), SLOT_A]]
    run = FakeRunner()
    flash_board(build_dir, "auto", run, only("openocd"), log=lambda _: None)
    assert run.calls[1] == ["/opt/bin/openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
                            "-c", f"program {{{build_dir / 'slot-a.bin'}}} {SLOT_A} verify", "-c", "reset",
                            "-c", "exit"]


def test_no_programmer_installed_says_what_to_install(build_dir: Path) -> None:
    with pytest.raises(FlashingError, match="no programmer found; install one of STM32CubeProgrammer") as e:
        flash_board(build_dir, "auto", FakeRunner(), only(), log=lambda _: None)
    assert "--sim" in str(e.value)
    with pytest.raises(FlashingError, match=r"st-flash \(st-flash\) is not installed"):
        flash_board(build_dir, "st-flash", FakeRunner(), only("openocd"), log=lambda _: None)
    with pytest.raises(FlashingError, match="unknown tool 'jlink'"):
        flash_board(build_dir, "jlink", FakeRunner(), only("openocd"), log=lambda _: None)


def test_a_failing_tool_stops_with_its_last_line(build_dir: Path) -> None:
    run = FakeRunner(fail_at=2, output="Connecting...\nError: No STM32 target found!\n")
    with pytest.raises(FlashingError, match=r"Failed to write slot-a.bin at 0x08020000 with cubeprog: "
                                            r"Error: No STM32 target found!"):
        flash_board(build_dir, "cubeprog", run, only("STM32_Programmer_CLI"), log=lambda _: None)
    assert len(run.calls) == 2


def test_missing_image_is_named(tmp_path: Path) -> None:
    with pytest.raises(FlashingError, match=r"bootloader.bin does not exist \(run `invoke build`\)"):
        flash_board(tmp_path, "auto", FakeRunner(), only("openocd"), log=lambda _: None)


def test_sim_writes_a_flash_file_that_boots_slot_a(build_dir: Path, tmp_path: Path) -> None:
    from stm32_twin import Stm32Twin

    flash = tmp_path / "flash.bin"
    flash.write_bytes(bytes(LAYOUT.flash_size))          # a used chip: all zeros everywhere
    flash_sim(build_dir, flash, log=lambda _: None)
    data = flash.read_bytes()
    boot, a = (build_dir / "bootloader.bin").read_bytes(), (build_dir / "slot-a.bin").read_bytes()
    off_a = LAYOUT.region("slot_a").base - LAYOUT.flash_base
    assert data[:len(boot)] == boot and data[off_a:off_a + len(a)] == a
    assert data[len(boot):off_a] == b"\xff" * (off_a - len(boot))      # the rest erased
    assert data[off_a + len(a):] == b"\xff" * (len(data) - off_a - len(a))
    meta = LAYOUT.region("metadata")
    assert decode_journal(data[meta.base - LAYOUT.flash_base:][:meta.size]) is None
    with Stm32Twin(flash) as board:
        board.power_on()
        board.run(ms=300)
        assert "boot: journal empty" in board.uart_lines
        assert any(x.startswith("app: start slot A v1.0.0+") for x in board.uart_lines), board.uart_lines
        assert board.leds["green"] or any(e.kind == "led" and e.data["led"] == "green" for e in board.events)


def test_flash_stm32_task_sim(build_dir: Path, tmp_path: Path) -> None:
    """The task as a user runs it (invoke's own command line), on a copy of the build."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "b"
    shutil.copytree(build_dir, copy)
    flash = tmp_path / "sim" / "flash.bin"
    r = subprocess.run([sys.executable, "-m", "invoke", "flash-stm32", "--sim", str(flash),
                        "--build-dir", str(copy)], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "slot-a.bin" in r.stdout and flash.stat().st_size == LAYOUT.flash_size
    r = subprocess.run([sys.executable, "-m", "invoke", "flash-stm32", "--sim", str(flash), "--build-dir",
                        str(tmp_path / "nothing")], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "does not exist (run `invoke build`)" in r.stderr


def test_option_bytes_are_shown_with_cubeprog_or_openocd() -> None:
    from stm32_fota.option_bytes import show_options

    run = FakeRunner()
    lines: list[str] = []
    show_options("auto", run, only("STM32_Programmer_CLI", "openocd", "st-flash"), lines.append)
    assert run.calls == [["/opt/bin/STM32_Programmer_CLI", "-c", "port=SWD", "-ob", "displ"]]
    assert lines[-1] == "ok"
    run = FakeRunner()
    show_options("auto", run, only("openocd", "st-flash"), lambda _: None)
    assert run.calls == [["/opt/bin/openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
                          "-c", "init", "-c", "reset halt", "-c", "stm32f2x options_read 0",
                          "-c", "flash info 0", "-c", "exit"]]


def test_protect_sets_bor_level_3_and_write_protects_the_bootloader_sectors() -> None:
    from stm32_fota.option_bytes import protect_board

    region = LAYOUT.region("bootloader")
    sectors = range(region.first_sector, region.last_sector + 1)
    run = FakeRunner()
    protect_board("cubeprog", run, only("STM32_Programmer_CLI"), lambda _: None)
    exe = "/opt/bin/STM32_Programmer_CLI"
    assert run.calls == [[exe, "-c", "port=SWD", "-ob", "BOR_LEV=0", *(f"nWRP{s}=0" for s in sectors)],
                         [exe, "-c", "port=SWD", "-ob", "displ"]]
    run = FakeRunner()
    protect_board("openocd", run, only("openocd"), lambda _: None)
    write = run.calls[0]
    assert write[write.index("stm32f2x options_write 0 0xE0") - 1] == "-c"
    assert f"flash protect 0 {sectors.start} {sectors.stop - 1} on" in write
    assert write[-4:] == ["-c", "reset", "-c", "exit"]


def test_option_bytes_without_a_capable_tool_name_the_alternatives() -> None:
    from stm32_fota.option_bytes import protect_board, show_options

    with pytest.raises(FlashingError, match="neither STM32_Programmer_CLI"):
        show_options("auto", FakeRunner(), only("st-flash"), lambda _: None)
    with pytest.raises(FlashingError, match=r"st-flash cannot read or write them.*--tool cubeprog"):
        protect_board("st-flash", FakeRunner(), only("st-flash"), lambda _: None)
    with pytest.raises(FlashingError, match="Failed to write the option bytes: Error: not connected"):
        protect_board("cubeprog", FakeRunner(fail_at=1, output="Error: not connected\n"),
                      only("STM32_Programmer_CLI"), lambda _: None)
