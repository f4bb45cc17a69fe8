"""`invoke sim` / `stm32-twin`: the command people use to try the firmware without a board."""

from __future__ import annotations

import json

import pytest
from stm32_twin.cli import SimOptions, main, parse_args, run_sim
from stm32_twin.errors import TwinError


def test_sim_prints_boot_log_led_changes_and_a_report(fw_build) -> None:
    out: list[str] = []
    status = run_sim(SimOptions(build_dir=str(fw_build.build_dir), run_ms=1200), out.append)
    assert status == 0
    assert any("uart    boot: start v1.0.0" in line for line in out)
    assert any("led     green on" in line for line in out)
    assert out[-1].startswith("sim: 1.200 s virtual in ") and "LEDs on: green" in out[-1]


def test_sim_json_gives_one_event_per_line_and_a_summary(fw_build) -> None:
    out: list[str] = []
    run_sim(SimOptions(build_dir=str(fw_build.build_dir), run_ms=600, json=True), out.append)
    records = [json.loads(line) for line in out]
    assert {r["kind"] for r in records[:-1]} <= {"power", "reset", "uart", "led"}
    assert all("t_us" in r for r in records[:-1])
    assert records[-1]["kind"] == "summary" and records[-1]["data"]["virtual_s"] == 0.6


def test_sim_keeps_a_flash_file_and_programs_a_slot_b_image(fw_build, tmp_path) -> None:
    flash = tmp_path / "flash.bin"
    run_sim(SimOptions(build_dir=str(fw_build.build_dir), flash=str(flash), run_ms=100), lambda s: None)
    assert flash.stat().st_size == 1024 * 1024
    out: list[str] = []
    opts = SimOptions(flash=str(flash), slot_b=str(fw_build.build_dir / "slot-b.bin"), run_ms=100)
    run_sim(opts, out.append)
    # The bootloader kept in the file now sees both slots.
    # Slot A is the journal's confirmed slot, checked by its CRC; slot B then only gets the cheap
    # checks (information block, trailer, vectors), which an image that is not there would fail.
    assert any("boot: slot B not checked v" in line for line in out), out


def test_sim_reports_a_missing_build_clearly(tmp_path, capsys) -> None:
    assert main(["--build-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Failed to load the build" in err and "bootloader.bin does not exist" in err


def test_free_run_follows_the_wall_clock(boot) -> None:
    import time

    from stm32_twin import PS_PER_MS
    from stm32_twin.freerun import free_run

    board = boot("systick")
    t0 = time.monotonic()
    free_run(board, 0.3, speed=5.0, step_s=0.005)
    wall = time.monotonic() - t0
    assert board.now_ps == 300 * PS_PER_MS
    assert wall >= 0.3 / 5.0          # never ahead of the wall clock (x5 here)
    assert [e.time_ps for e in board.events if e.kind == "led"] == [100 * PS_PER_MS, 200 * PS_PER_MS]


def test_sim_board_options_reach_the_twin(fw_build) -> None:
    """--no-hse, --vdda and --revision: the boot log shows the HSI fallback; revision A keeps the
    prefetch off, so the strict run does not fault."""
    out: list[str] = []
    # 3 s: the boot lines drain from a RAM ring after the jump, well within that (without the
    # crystal each clock set-up gives up on the HSE after 10 ms)
    argv = ["--build-dir", str(fw_build.build_dir), "--run-ms", "3000", "--no-hse", "--vdda", "3.3",
            "--revision", "A", "--hardware-watchdog", "--lsi-hz", "47000", "--floating-nss"]
    opts = parse_args(argv)
    assert (opts.no_hse, opts.vdda, opts.revision) == (True, 3.3, "A")
    assert (opts.hardware_watchdog, opts.lsi_hz, opts.floating_nss) == (True, 47_000, True)
    assert run_sim(opts, out.append) == 0, out
    assert any("clock hsi-pll 168 MHz" in line for line in out), out
    assert any("boot: opt wdg hw bor off" in line for line in out), out
    with pytest.raises(TwinError, match="lsi_hz 50000 is outside 17000-47000"):
        run_sim(parse_args(["--build-dir", str(fw_build.build_dir), "--lsi-hz", "50000"]), out.append)
    with pytest.raises(SystemExit):
        parse_args(["--revision", "Q"])
