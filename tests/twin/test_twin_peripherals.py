"""Peripheral semantics of the twin, proven with small programs built for it (tests/twin/progs)."""

from __future__ import annotations

import pytest
from fota_testkit.stm32twin import values
from stm32_twin import PS_PER_MS, PS_PER_US, TwinFault

SR_EOP, SR_WRPERR, SR_PGAERR, SR_PGPERR, SR_PGSERR, SR_BSY = 1, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 16


def led_times(board, led: str) -> list[tuple[float, bool]]:
    return [(e.time_ps, e.data["on"]) for e in board.events if e.kind == "led" and e.data["led"] == led]


def test_systick_interrupts_and_exception_return_keep_fp_context(boot) -> None:
    board = boot("systick")
    board.run(ms=1010)
    toggles = led_times(board, "green")
    # The handler toggles green every 100 SysTick interrupts at 1 kHz: exactly every 100 ms.
    assert [t for t, _ in toggles] == [k * 100 * PS_PER_MS for k in range(1, 11)]
    assert [on for _, on in toggles] == [k % 2 == 1 for k in range(1, 11)]
    v = values(board)
    # main's FP register (x = 1.25, scaled by 100) survives 1000 interrupts whose handler uses FP:
    # the extended frame (S0-S15, FPSCR) is stacked and restored.
    assert v["x"] == 125
    assert v["ticks"] == 1000 and v["acc"] == 500
    assert board.fault is None


def test_flash_interface_locking_error_flags_and_programming(boot) -> None:
    board = boot("flash", config=1, strict=False, power=False)
    board.flash.wrp_sectors.add(3)
    board.power_on()
    board.run(ms=800)
    v = values(board)
    assert v["cr_after_reset"] == 1 << 31                      # LOCK after reset
    assert v["sr_locked_write"] == SR_PGSERR                   # locked: sequence error
    assert v["data_locked_write"] == 0xFFFF_FFFF               # and nothing written
    assert v["sr_cleared"] == 0                                # error flags are write-1-to-clear
    assert v["cr_unlocked"] & (1 << 31) == 0                   # KEY1, KEY2 unlock
    assert v["sr_pgperr"] == SR_PGPERR                         # byte access with PSIZE x32
    assert v["sr_pgaerr"] == SR_PGAERR                         # word across a 128-bit row
    assert v["sr_pgserr"] == SR_PGSERR                         # write without PG
    assert v["sr_wrperr"] == SR_WRPERR                         # write-protected sector
    assert v["sr_ok"] == 0 and v["word"] == 0x1234_5678
    assert v["word_and"] == 0x0000_5678                        # programming only clears bits
    assert v["word_erased"] == 0xFFFF_FFFF
    assert v["cr_locked"] == 1 << 31
    # A wrong key is a bus error: HardFault (the next instruction never runs), CR stays locked.
    assert v["hardfault_cr"] == 1 << 31 and "not_reached" not in v
    assert any(e.kind == "warning" and "wrong FLASH_KEYR" in e.data for e in board.events)


def test_flash_program_and_erase_take_the_datasheet_times(boot) -> None:
    board = boot("flash", config=1, strict=False)
    board.run(ms=800)
    (t_on, _), (t_off, _) = led_times(board, "green")[:2]
    # Word program, typical 16 us (DS8626); the pulse includes a few instructions around it.
    assert 16 * PS_PER_US <= t_off - t_on < 18 * PS_PER_US
    (e_on, _), (e_off, _) = led_times(board, "orange")[:2]
    # 16 KB sector erase, typical 250 ms.
    assert 250 * PS_PER_MS <= e_off - e_on < 250 * PS_PER_MS + 50 * PS_PER_US


def test_flash_maximum_timing_option(boot) -> None:
    board = boot("flash", config=1, strict=False, flash_timing="maximum")
    board.run(ms=1500)
    (e_on, _), (e_off, _) = led_times(board, "orange")[:2]
    assert 500 * PS_PER_MS <= e_off - e_on < 500 * PS_PER_MS + 50 * PS_PER_US


def test_fetch_from_flash_stalls_until_the_erase_ends(boot) -> None:
    board = boot("flash", config=1, strict=False)
    board.run(ms=1200)
    started = [t for t, on in led_times(board, "orange") if on][1]   # second erase: no wait in SRAM
    red_on = next(t for t, on in led_times(board, "red") if on)
    # The instruction after the return to flash could not be fetched before the erase ended.
    assert red_on - started >= 250 * PS_PER_MS
    assert red_on - started < 250 * PS_PER_MS + 20 * PS_PER_US
    assert values(board)["sr_after_stall"] & SR_BSY == 0


def test_programming_over_non_erased_flash_is_a_fault_in_strict_mode(boot) -> None:
    board = boot("flash", config=1, power=False)
    board.flash.wrp_sectors.add(3)
    board.power_on()
    with pytest.raises(TwinFault, match=r"programming flash that is not erased at 0x08008000.*PC 0x0800"):
        board.run(ms=800)


def test_software_and_watchdog_resets_set_their_flags_and_keep_backup_registers(boot) -> None:
    board = boot("resets")
    board.run(ms=200)
    resets = [e for e in board.events if e.kind == "reset"]
    assert [e.data["cause"] for e in resets] == ["power", "software", "iwdg"]
    boots = [int(line.split()[1], 16) for line in board.uart_lines if line.startswith("boot ")]
    assert boots == [1, 2, 3]  # RTC_BKP0R survived both system resets
    csr = [int(line.split()[1], 16) for line in board.uart_lines if line.startswith("csr ")]
    por, pin, sft, iwdg = 1 << 27 | 1 << 25, 1 << 26, 1 << 28, 1 << 29
    assert csr == [por | pin, sft | pin, iwdg | pin]
    assert all(int(line.split()[1], 16) == 0 for line in board.uart_lines if line.startswith("csr_cleared"))
    # The watchdog (80 x 4 / 32 kHz = 10 ms) fires 10 ms after the last refresh (loop ms 49); the
    # "stop refresh" line starts at loop ms 50 and takes 130 us at 1 Mbaud.
    stop = next(e for e in board.events if e.kind == "uart" and e.data == "stop refresh")
    last_refresh = stop.time_ps - 130 * PS_PER_US - 1 * PS_PER_MS
    assert abs(resets[2].time_ps - last_refresh - 10 * PS_PER_MS) < 20 * PS_PER_US
    # A power cycle clears the backup domain.
    n = len(board.uart_lines)
    board.power_cycle()
    board.run(ms=5)
    assert board.uart_lines[n] == "boot 0x00000001"


def test_crc_adc_temperature_unique_id_and_idcode(boot) -> None:
    board = boot("misc", temperature_c=40.0, uid=bytes(range(1, 13)))
    board.run(ms=20)
    v = values(board)
    crc = 0xFFFF_FFFF
    for word in (0x1234_5678, 0xCAFE_BABE):  # CRC-32/MPEG-2 word-wise, as the unit computes it
        crc ^= word
        for _ in range(32):
            crc = ((crc << 1) ^ 0x04C1_1DB7) & 0xFFFF_FFFF if crc & 0x8000_0000 else (crc << 1) & 0xFFFF_FFFF
    assert v["crc"] == crc
    # 40 C: 0.76 V + 15 x 2.5 mV = 0.7975 V of the Discovery board's VDDA (3.0 V), 12 bits.
    assert v["adc16"] == round(0.7975 / 3.0 * 4095)
    assert (v["uid0"], v["uid1"], v["uid2"]) == (0x0403_0201, 0x0807_0605, 0x0C0B_0A09)
    assert v["flash_kb"] == 1024
    assert v["idcode"] & 0xFFF == 0x413


def test_strict_mode_stops_on_an_unmodeled_register_with_a_clear_message(boot) -> None:
    board = boot("misc", config=2)
    with pytest.raises(TwinFault) as exc:
        board.run(ms=20)
    msg = str(exc.value)
    assert "0x40005400" in msg and "4 byte(s)" in msg and "read" in msg and "in main" in msg
    assert board.events[-1].kind == "fault"


def test_non_strict_mode_reads_unmodeled_registers_as_zero(boot) -> None:
    board = boot("misc", config=2, strict=False)
    board.run(ms=20)
    assert values(board)["i2c1_cr1"] == 0
    assert values(board)["done"] == 0
    assert any(e.kind == "warning" and "0x40005400" in e.data for e in board.events)


def test_spi_slave_polled_echo_and_nss_interrupt(boot) -> None:
    board = boot("spi", config=0)
    board.run(ms=2)
    rx = board.spi_transfer(bytes([1, 2, 3, 4, 5]), hz=100_000)
    # Byte 0 goes out from the preloaded data register. The answer to byte k is written after byte
    # k ended, when byte k + 1 has already started: it goes out in byte k + 2, and byte 1 repeats
    # the stale data register (as on the chip: the slave must load DR before the first SCK edge).
    assert rx == bytes([0xA0, 0xA0, 2, 3, 4])
    board.run(ms=1)
    assert values(board)["sr"] & (1 << 6) == 0  # no overrun at 100 kHz
    assert board.spi2.counts["overruns"] == 0


def test_spi_slave_overruns_and_underruns_when_the_firmware_is_too_slow(boot) -> None:
    board = boot("spi", config=1)
    board.run(ms=2)
    rx = board.spi_transfer(bytes(range(10, 42)), hz=10_500_000)
    board.run(ms=1)
    assert values(board)["sr"] & (1 << 6)  # OVR seen by the firmware
    assert board.spi2.counts["overruns"] > 20
    # Bytes the firmware did not supply in time repeat what the data register held.
    assert rx[0] == 0xA0 and rx.count(rx[1]) > 20


def test_spi_slave_with_dma_streams_and_exti_on_nss_rising_edge(boot) -> None:
    board = boot("spi", config=2)
    board.run(ms=2)
    assert values(board)["ndtr_tx_armed"] == 15  # one byte already in the data register
    rx = board.spi_transfer(b"0123456789abcdef", hz=10_500_000)
    board.run(ms=2)
    assert rx == b"twin-dma-pattern"
    v = values(board)
    assert v["ndtr_rx"] == 0
    assert v["lisr"] == (1 << 27) | (1 << 26)   # stream 3: TCIF, HTIF
    assert v["hisr"] == (1 << 5) | (1 << 4)     # stream 4: TCIF, HTIF
    assert board.uart_lines[-1] == "rx 0123456789abcdef"


@pytest.mark.parametrize(("n", "hold_us"), [(12, 0.0), (12, 5.0), (32, 0.0), (32, 5.0)])
def test_a_dma_stream_disabled_with_an_item_in_flight_stops_after_it(boot, n: int, hold_us: float) -> None:
    """RM0090 10.3.17: clearing EN finishes the current item first. NSS rising right at the end of
    the last byte finds that byte taken by the DMA but not yet counted: EN still reads 1 and NDTR
    one more, until the item is done; then EN reads 0, NDTR counts it and TCIF is set. When that
    byte is the last of NDTR (32 of 32), the stream ends by itself at the same moment. Some
    microseconds after the last byte (the program runs at 16 MHz: an item takes 34 cycles, 2.1 us),
    the stream has nothing in flight and stops at once."""
    board = boot("spi", config=3)
    board.run(ms=2)
    board.spi_transfer(bytes(range(100, 100 + n)), hz=10_500_000, hold_us=hold_us)
    board.run(ms=2)
    v = values(board)
    in_flight = hold_us == 0.0
    assert v["en_at_once"] == (1 if in_flight else 0)
    assert v["ndtr_at_once"] == 32 - n + (1 if in_flight else 0)
    assert (v["polls"] > 0) == in_flight
    assert v["ndtr_stopped"] == 32 - n
    assert v["lisr_stopped"] == (1 << 27) | ((1 << 26) if n >= 16 else 0)   # stream 3: TCIF (HTIF)
    assert v["last"] == 100 + n - 1


def _wait_ps(board) -> int:
    (t_on, _), (t_off, _) = led_times(board, "green")[:2]
    return t_off - t_on


def test_a_busy_wait_jumps_to_the_event_it_waits_for(boot) -> None:
    board = boot("waits")
    board.run(ms=10)
    v = values(board)
    assert v["hserdy"] == 1 and v["polls"] < 100
    # HSE start-up is 2 ms: the wait ends then, after a handful of polls, not 2 ms of instructions.
    assert 2 * PS_PER_MS <= _wait_ps(board) < 2 * PS_PER_MS + 20 * PS_PER_US


def test_a_wait_for_something_that_never_comes_still_times_out(boot) -> None:
    board = boot("waits", hse_hz=0)   # no crystal: HSERDY never rises
    board.run(ms=50)
    v = values(board)
    assert v["hserdy"] == 0 and v["polls"] == 20000
    # All 20 000 iterations ran (several instructions each at 16 MHz): no jump to the end of the run.
    assert 20000 * 3 * PS_PER_US // 16 <= _wait_ps(board) < 20000 * 10 * PS_PER_US // 16


def test_nvic_priorities_preemption_masking_and_tail_chaining(boot) -> None:
    board = boot("nvic")
    board.run(ms=5)
    lines = {line.split()[0]: line.split()[1:] for line in board.uart_lines}
    assert lines["primask"] == ["3", "1"]           # 0x40 before 0xC0, both after CPSIE
    assert lines["preempt"] == ["0", "2", "100"]     # IRQ 2 ran inside IRQ 0's handler
    assert lines["basepri"] == ["3"]                 # IRQ 1 (0xC0) held back by BASEPRI 0x80
    assert lines["released"] == ["1"]                # and taken once BASEPRI is cleared
