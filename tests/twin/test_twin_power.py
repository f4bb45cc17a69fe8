"""Power cuts, persistence, NRST and the API's run helpers."""

from __future__ import annotations

import pytest
from stm32_twin import PS_PER_MS, Stm32Twin, TwinError

TARGET = 0x0800_8000  # the word the flash program writes (sector 2)


def test_counting_flash_operations_then_cutting_at_each(boot) -> None:
    def fresh() -> Stm32Twin:
        board = boot("flash", config=1, strict=False, power=False)
        board.load_bytes(bytes(0x4000), 0x0800_4000)   # sector 1 holds zeros before its erase
        board.power_on()
        return board

    clean = fresh()
    clean.run(ms=800)
    # program sector 3, the word, the over-program, erase sector 2, erase sector 1 (the error
    # cases start no operation)
    assert clean.flash_op_count == 5
    for n in range(1, clean.flash_op_count + 1):
        board = fresh()
        board.cut_power_at_flash_op(n)
        board.run(ms=800)
        assert not board.powered and board.events[-1].data == "off"
        assert board.flash_op_count == n
        if n == 2:  # cut while 0x12345678 was programmed over 0xFFFFFFFF: only some bits cleared
            word = int.from_bytes(board.flash_bytes(TARGET, 4), "little")
            assert word & 0x1234_5678 == 0x1234_5678
            assert word not in (0x1234_5678, 0xFFFF_FFFF)
        if n == 5:  # cut during the erase of sector 1: erased from its base, old zeros after
            sector = board.flash_bytes(0x0800_4000, 0x4000)
            erased = len(sector) - len(sector.lstrip(b"\xff"))
            assert 0 < erased < 0x4000 - 256
            assert sector[erased + 256:] == bytes(0x4000 - erased - 256)
        # Power comes back and the program starts again from reset.
        before = len(board.uart_lines)
        board.power_on()
        board.run(ms=1)
        assert board.uart_lines[before] == "cr_after_reset 0x80000000"


def test_power_cut_at_a_virtual_time(boot) -> None:
    board = boot("systick")
    board.cut_power_at_us(150_000)
    board.run(ms=1000)
    off = [e for e in board.events if e.kind == "power" and e.data == "off"]
    assert [e.time_ps for e in off] == [150 * PS_PER_MS]
    # Nothing runs while the power is off: the LED stopped with the CPU.
    assert all(e.time_ps <= 150 * PS_PER_MS for e in board.events if e.kind == "led")


def test_flash_persists_in_a_file_between_twins(progs, tmp_path) -> None:
    path = tmp_path / "flash.bin"
    with Stm32Twin(flash_file=path, strict=False) as a:
        a.load_bin(progs["flash"].with_suffix(".bin"), 0x0800_0000)
        a.load_bytes((1).to_bytes(4, "little"), 0x0800_3F00)
        a.power_on()
        a.run(ms=100)  # programs done, the erase of that sector still running
    assert path.stat().st_size == 1024 * 1024
    with Stm32Twin(flash_file=path) as b:
        assert int.from_bytes(b.flash_bytes(TARGET, 4), "little") == 0x0000_5678
        assert b.flash_bytes(0x0800_0000, 8) == progs["flash"].with_suffix(".bin").read_bytes()[:8]


def test_a_flash_file_of_the_wrong_size_is_refused(tmp_path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"\xff" * 100)
    with pytest.raises(TwinError, match=r"Failed to open flash file .*short.bin: it has 100 bytes"):
        Stm32Twin(flash_file=path)


def test_nrst_held_low_stops_the_cpu_and_release_resets_it(boot) -> None:
    board = boot("systick")
    board.run(ms=150)
    board.set_pin("NRST", 0)
    assert board.pin("NRST") == 0
    reset = [e for e in board.events if e.kind == "reset"][-1]
    assert (reset.time_ps, reset.data) == (150 * PS_PER_MS, {"cause": "pin"})
    board.run(ms=300)
    # Green went off with the reset (its pin back to an input) and nothing ran while held.
    led = [(e.time_ps, e.data["on"]) for e in board.events if e.kind == "led"]
    assert led == [(100 * PS_PER_MS, True), (150 * PS_PER_MS, False)]
    board.set_pin("NRST", 1)
    board.run(ms=101)
    # Released at 450 ms: the program starts again, its first toggle comes 100 ms later.
    led = [e for e in board.events if e.kind == "led"]
    assert led[-1].time_ps == 550 * PS_PER_MS and led[-1].data == {"led": "green", "on": True}


def test_run_until_returns_the_matching_event_or_none(boot) -> None:
    board = boot("systick")
    ev = board.run_until("uart", timeout_ms=1000, match="ticks")
    assert ev is not None and ev.data == "ticks 0x000000FA"
    assert board.now_ps < 300 * PS_PER_MS      # it stopped at the event, not at the timeout
    assert board.run_until("uart", timeout_ms=50, match="never") is None
    assert board.run_until(lambda e: e.kind == "led" and e.data["on"], timeout_ms=200) is not None


def test_unknown_pin_names_are_reported() -> None:
    board = Stm32Twin()
    with pytest.raises(TwinError, match="Failed to find pin 'PZ1'"):
        board.pin("PZ1")
    assert board.pin("READY") == 0


def test_power_off_drops_the_outputs(boot) -> None:
    board = boot("systick")
    board.run(ms=150)
    assert board.leds["green"]
    board.power_off()
    assert board.events[-1].kind == "power"
    assert {"led": "green", "on": False} in [e.data for e in board.events[-4:] if e.kind == "led"]
    assert not any(board.leds.values())


def test_snapshot_restore_and_flash_file_loading(boot, tmp_path) -> None:
    board = boot("flash", config=1, strict=False)
    board.run(ms=100)
    snap = board.flash_snapshot()
    assert int.from_bytes(snap[TARGET - 0x0800_0000:][:4], "little") == 0x0000_5678
    image = tmp_path / "image.bin"
    image.write_bytes(snap)
    other = Stm32Twin()
    other.load_flash_file(image)
    assert other.flash_snapshot() == snap
    other.restore_flash(bytes([0xFF]) * len(snap))
    assert other.flash_bytes(0x0800_0000, 4) == b"\xff" * 4
    image.write_bytes(b"abc")
    with pytest.raises(TwinError, match=r"Failed to load flash file .*: 3 bytes"):
        other.load_flash_file(image)
    # Register reads for tests: FLASH_CR is locked after reset.
    assert other.read_reg(0x4002_3C10) == 1 << 31
    other.close()
