"""The real bootloader and slot binaries (the session's firmware build) on the twin, strict mode."""

from __future__ import annotations

import itertools
import re
import zlib

import pytest
from fota_formats.spec import IMAGE, LAYOUT
from stm32_twin import PS_PER_MS, Stm32Twin

C = IMAGE.constants
META = IMAGE.structs["meta_record"]


def meta_record(slot: int, seq: int = 1, version: tuple[int, int, int] = (1, 0, 0)) -> bytes:
    """A confirmed journal record selecting ``slot``, as the firmware writes it."""
    body = META.pack(magic=C["META_RECORD_MAGIC"], seq=seq, active_slot=slot,
                     state=C["META_STATE_CONFIRMED"], attempts_left=0, last_result=C["RESULT_NONE"],
                     prev_slot=slot, ver_major=version[0], ver_minor=version[1], ver_patch=version[2])
    crc_off = next(f.offset for f in META.fields if f.name == "crc32")
    return body[:crc_off] + zlib.crc32(body[:crc_off]).to_bytes(4, "little")


@pytest.fixture
def board(fw_build) -> Stm32Twin:
    b = Stm32Twin(temperature_c=25.0)
    yield b
    b.close()


def toggles(board: Stm32Twin, led: str) -> list[int]:
    return [e.time_ps for e in board.events if e.kind == "led" and e.data["led"] == led]


def test_bootloader_starts_slot_a_and_green_blinks_at_the_app_period(board, fw_build) -> None:
    board.load_build(fw_build.build_dir, slot_b=False)
    board.power_on()
    board.run(ms=2600)
    assert board.uart_lines[0].startswith("boot: start v1.0.0")
    assert any(re.match(r"boot: jump slot A v1\.0\.0", line) for line in board.uart_lines)
    assert any(line.startswith("app: start slot A") for line in board.uart_lines)
    green = toggles(board, "green")
    assert len(green) >= 5
    periods = {b - a for a, b in itertools.pairwise(green[1:])}
    assert periods == {500 * PS_PER_MS}   # 500 ms on, 500 ms off, to the picosecond
    assert toggles(board, "orange") == [] and toggles(board, "red") == []


def test_journal_selecting_valid_slot_b_gives_the_orange_led(board, fw_build) -> None:
    board.load_build(fw_build.build_dir)
    board.load_bytes(meta_record(C["SLOT_B"]), LAYOUT.region("metadata").base)
    board.power_on()
    board.run(ms=1600)
    assert any(line.startswith("boot: jump slot B") for line in board.uart_lines)
    assert len(toggles(board, "orange")) >= 3
    assert toggles(board, "green") == []


def test_invalid_chosen_slot_falls_back_to_the_other(board, fw_build) -> None:
    board.load_build(fw_build.build_dir)
    board.load_bytes(meta_record(C["SLOT_B"]), LAYOUT.region("metadata").base)
    # Corrupt one byte of slot B's code: its SHA-256 no longer matches the trailer.
    addr = LAYOUT.region("slot_b").base + 0x400
    board.load_bytes(bytes([board.flash_bytes(addr, 1)[0] ^ 0xFF]), addr)
    board.power_on()
    board.run(ms=1600)
    assert any(re.match(r"boot: slot B invalid", line) for line in board.uart_lines), board.uart_lines
    assert any(line.startswith("boot: jump slot A") for line in board.uart_lines)
    assert len(toggles(board, "green")) >= 3 and toggles(board, "orange") == []


def test_empty_slots_leave_the_bootloader_blinking_red(board, fw_build) -> None:
    board.load_build(fw_build.build_dir, slot_a=False, slot_b=False)
    board.power_on()
    board.run(ms=3000)
    red = toggles(board, "red")
    assert len(red) >= 4
    assert not any(line.startswith("app:") for line in board.uart_lines)
    assert toggles(board, "green") == [] and toggles(board, "orange") == []


@pytest.mark.parametrize("celsius", [-10.0, 42.0])
def test_temperature_log_line_reports_the_configured_temperature(fw_build, celsius: float) -> None:
    with Stm32Twin(temperature_c=celsius) as board:
        board.load_build(fw_build.build_dir, slot_b=False)
        board.power_on()
        ev = board.run_until("uart", timeout_ms=2500, match=" temp ")
    assert ev is not None
    m = re.search(r"temp (-?\d+\.\d+) C", ev.data)
    assert m, ev.data
    # One ADC step is 3.3 V / 4095 = 0.8 mV = 0.32 C.
    assert abs(float(m.group(1)) - celsius) <= 0.33


def test_the_application_answers_info_over_spi2_dma_and_exti(fw_build) -> None:
    from fota_lab.master import Master, TwinPort

    uid = bytes(range(0x40, 0x4C))
    with Stm32Twin(temperature_c=30.0, uid=uid) as board:
        board.load_build(fw_build.build_dir, slot_b=False)
        board.power_on()
        board.run_until("uart", timeout_ms=1500, match=" temp ")
        info = Master(TwinPort(board)).info()
        assert info["running_slot"] == C["SLOT_A"]
        assert (info["run_major"], info["run_minor"], info["run_patch"]) == (1, 0, 0)
        assert info["uid"] == uid
        assert abs(info["temp_centi"] - 3000) <= 33
        assert board.spi2.counts["overruns"] == 0
