"""The firmware against what the silicon and the board add to the reference manual: errata (ES0182),
the Discovery board's VDDA, factory calibration, silicon revisions, core state at the jump (PM0214)
and the clock limits (DS8626, RM0090 7.3.3). Each of these stopped or misled the firmware before
it followed the reference named in its comment."""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from fota_formats.spec import IMAGE, LAYOUT
from stm32_twin import Stm32Twin
from stm32_twin.chip import REVISIONS
from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE
from unicorn import arm_const as A

C = IMAGE.constants
META = IMAGE.structs["meta_record"]
DBGMCU_APB1_FZ, IWDG_STOP = 0x08, 1 << 12


def _booted(build_dir: Path, **board: object) -> tuple[Stm32Twin, float]:
    """A strict twin (so any violation stops it) booted into the application; its first temperature."""
    twin = Stm32Twin(**board)
    twin.load_build(build_dir, slot_b=False)
    twin.power_on()
    ev = twin.run_until("uart", timeout_ms=2500, match=" temp ")
    assert ev is not None, twin.uart_lines
    m = re.search(r"temp (-?\d+\.\d+) C", ev.data)
    assert m, ev.data
    return twin, float(m.group(1))


def test_every_clock_enable_is_followed_by_a_barrier_before_the_first_access(fw_build) -> None:
    """ES0182 2.1.13: the ADC's common register written two instructions after its clock enable is
    lost (sensor off, ADC clock at 42 MHz); the twin stops on it in strict mode."""
    twin, _ = _booted(fw_build.build_dir)
    with twin:
        twin.run(ms=100)
        assert twin.fault is None
        assert twin.adc.ccr & (1 << 23), "TSVREFE is off: the ADC_CCR write was lost"
        assert (twin.adc.ccr >> 16) & 3 == 1, "ADCPRE is not /4 (21 MHz)"


@pytest.mark.parametrize(("vdda", "v25"), [(3.0, 0.76), (3.0, 0.72), (3.3, 0.79)],
                         ids=["discovery", "discovery-low-v25", "3v3-high-v25"])
def test_temperature_uses_vrefint_and_the_factory_calibration(fw_build, vdda: float, v25: float) -> None:
    """A Discovery board's VDDA is 3.0 V, and V25 varies between parts: with VREFINT and the
    calibration values in system memory, 25 C reads as 25 C (a 3.3 V formula read about 55 C)."""
    twin, celsius = _booted(fw_build.build_dir, temperature_c=25.0, vdda=vdda, sensor_v25=v25)
    twin.close()
    assert abs(celsius - 25.0) <= 0.6, celsius


def test_the_application_starts_with_control_at_its_reset_value(fw_build) -> None:
    """PM0214 2.1.3 and 2.3.7: the bootloader's SHA-256 uses FP registers (CONTROL.FPCA = 1); the
    application must start as after a reset, CONTROL = 0, so its exceptions push the 8-word frame
    until it uses the FPU itself."""
    twin = Stm32Twin()
    with twin:
        twin.load_build(fw_build.build_dir, slot_b=False)
        base = LAYOUT.region("slot_a").base + IMAGE.constants["IMAGE_HDR_SIZE"]   # the vector table
        sp, entry = (int.from_bytes(twin.flash_bytes(base + 4 * i, 4), "little") for i in range(2))
        seen: list[tuple[int, int]] = []

        def at_entry(uc: object, address: int, size: int, _ud: object) -> None:
            if not seen:
                seen.append((uc.reg_read(A.UC_ARM_REG_CONTROL), uc.reg_read(A.UC_ARM_REG_MSP)))

        twin.uc.hook_add(UC_HOOK_CODE, at_entry, begin=entry & ~1, end=entry & ~1)
        twin.power_on()
        twin.run_until("uart", timeout_ms=1500, match="app: start")
        assert seen, "the application's first instruction never ran"
        control, msp = seen[0]
        assert control == 0, f"CONTROL = {control:#x} at the application's entry (FPCA is bit 2)"
        assert msp == sp


@pytest.mark.parametrize("hse_hz", [8_000_000, 0], ids=["hse", "no-hse"])
def test_clock_switches_keep_every_bus_within_its_limit(fw_build, hse_hz: int) -> None:
    """RM0090 7.3.3: prescalers before the switch up, the switch back before the prescalers go to /1
    (the application's clock_init starts from the bootloader's 168 MHz); wait states read back
    first (3.5.1); VCO input 2 MHz (7.3.2). The twin checks HCLK/PCLK1/PCLK2 and the wait states at
    every change."""
    twin, _ = _booted(fw_build.build_dir, hse_hz=hse_hz)
    with twin:
        assert twin.fault is None
        cfg = twin.rcc.r[0x04]
        m, src = cfg & 0x3F, (hse_hz if cfg & (1 << 22) else 16_000_000)
        assert src // m == 2_000_000, f"VCO input {src // m} Hz"
        assert twin.rcc.hclk_hz() == 168_000_000
        assert (twin.rcc.pclk1_hz(), twin.rcc.pclk2_hz()) == (42_000_000, 84_000_000)
        source = "hse-pll" if hse_hz else "hsi-pll"
        assert any(f"clock {source} 168 MHz" in line for line in twin.uart_lines), twin.uart_lines[:2]


@pytest.mark.parametrize(("revision", "prefetch"), [("A", False), ("Z", True), ("2", True)])
def test_prefetch_only_on_revisions_that_allow_it(fw_build, revision: str, prefetch: bool) -> None:
    """ES0182: the ART prefetch is not supported on revision A (DBGMCU_IDCODE REV_ID 0x1000)."""
    twin, _ = _booted(fw_build.build_dir, revision=REVISIONS[revision])
    with twin:
        assert bool(twin.flash.acr & (1 << 8)) == prefetch
        assert twin.flash.acr & 7 == 5 and twin.flash.acr & (3 << 9) == 3 << 9  # 5 WS, I and D caches


def test_a_trial_boot_stops_the_watchdog_while_a_debugger_halts_the_core(fw_build) -> None:
    """RM0090 38.16.4 DBG_IWDG_STOP: a halt in a debugger during a trial boot does not reset it."""
    body = META.pack(magic=C["META_RECORD_MAGIC"], seq=1, active_slot=C["SLOT_A"],
                     state=C["META_STATE_TRIAL"], attempts_left=3, last_result=C["RESULT_NONE"],
                     prev_slot=C["SLOT_A"], ver_major=1,
                     ver_minor=0, ver_patch=0)
    crc_off = next(f.offset for f in META.fields if f.name == "crc32")
    record = body[:crc_off] + zlib.crc32(body[:crc_off]).to_bytes(4, "little")
    with Stm32Twin() as twin:
        twin.load_build(fw_build.build_dir, slot_b=False)
        twin.load_bytes(record, LAYOUT.region("metadata").base)
        twin.power_on()
        assert twin.run_until("uart", timeout_ms=1500, match="app: start") is not None, twin.uart_lines
        assert twin.iwdg.running
        assert twin.dbgmcu.r[DBGMCU_APB1_FZ] & IWDG_STOP


RETURN = re.compile(r"\t(bx\tlr|pop(\.w)?\t\{[^}]*pc\})")
STORE = re.compile(r"\tstr[bhd]?(\.w)?\t")


@pytest.mark.parametrize(("elf", "handler"), [("bootloader.elf", "SysTick_Handler"),
                                              ("slot-a.elf", "SysTick_Handler"),
                                              ("slot-a.elf", "link_exti_isr")])
def test_no_handler_returns_right_after_a_store(fw_build, elf: str, handler: str) -> None:
    """Cortex-M4 erratum 838869 (ES0182 section 1): a store immediately before the exception return
    may let the wrong interrupt be taken; a DSB must come between them."""
    objdump = shutil.which("arm-none-eabi-objdump")
    assert objdump, "arm-none-eabi-objdump is needed"
    out = subprocess.run([objdump, "-d", f"--disassemble={handler}", str(Path(fw_build.build_dir) / elf)],
                         capture_output=True, text=True, check=True).stdout
    insns = [line for line in out.splitlines() if re.match(r"\s*[0-9a-f]+:\t", line)]
    returns = [i for i, line in enumerate(insns) if RETURN.search(line)]
    assert returns, f"no exception return found in {handler}:\n{out}"
    for i in returns:
        for line in reversed(insns[max(0, i - 6):i]):   # back from the return: a DSB before any store
            assert not STORE.search(line), f"{handler}: a store, then the return:\n{out}"
            if "\tdsb" in line:
                break
        else:
            raise AssertionError(f"{handler}: no DSB right before the return:\n{out}")


def _ready_ms(build_dir: Path, **board: object) -> float:
    with Stm32Twin(**board) as twin:
        twin.load_build(build_dir, slot_b=False)
        twin.power_on()
        assert twin.wait_pin("READY", 1, timeout_ms=3000), twin.uart_lines
        return twin.now_ms


def test_without_a_crystal_each_clock_set_up_gives_up_on_the_hse_after_10_ms(fw_build) -> None:
    """The HSERDY wait is bounded by a time, 10 ms (five times DS8626's 2 ms typical start-up),
    counted by the DWT cycle counter: the bootloader and then the application each wait that long
    without a crystal, where a crystal is ready after 2 ms (the twin's start-up) in the bootloader
    and already running in the application."""
    with_crystal = _ready_ms(fw_build.build_dir)
    without = _ready_ms(fw_build.build_dir, hse_hz=0)
    extra = without - with_crystal
    assert 2 * 10 - 2 <= extra <= 2 * 10 - 2 + 2 * 0.8, f"{extra:.2f} ms longer without the crystal"


def test_the_twin_flags_a_store_right_before_a_return_that_tail_chains(boot) -> None:
    """Erratum 838869 on the twin: IRQ 0's handler ends with a store and IRQ 1 tail-chains after it:
    reported (a warning here, a fault in strict mode). SysTick's handler has a DSB between its store
    and the return: nothing to report, although IRQ 0 tail-chains after it."""
    board = boot("erratum", config=0, strict=False)
    board.run(ms=5)
    assert board.uart_lines[-1] == "order 16 17 16 17"
    warnings = [e.data for e in board.events if e.kind == "warning" and "838869" in e.data]
    assert len(warnings) == 2 and "exception 17 tail-chains" in warnings[0]
    board = boot("erratum", config=1)
    board.run(ms=5)
    assert board.uart_lines[-1] == "order 15 16 15 16"
    assert board.fault is None and board.erratum.checked == 2


def test_no_handler_of_the_firmware_ends_with_a_store_when_an_interrupt_tail_chains(fw_build) -> None:
    """Erratum 838869 while the application runs: an NSS edge raised at the very moment SysTick
    fires, so that one handler's return tail-chains into the other, every time. A strict twin
    stops at a store right before that return."""
    with _app_running(fw_build.build_dir) as twin:
        for _ in range(4):
            twin.set_pin("NSS", 0)
            twin.run(us=20)
            systick = twin.sched.next_time_of(frozenset({"systick irq"}))
            assert systick is not None
            twin.core.run_until_ps(systick)
            twin.set_pin("NSS", 1)
            twin.run(ms=2)
        assert twin.fault is None
        assert twin.erratum.checked >= 4


def _app_running(build_dir: Path, **board: object) -> Stm32Twin:
    twin = Stm32Twin(**board)
    twin.load_build(build_dir, slot_b=False)
    twin.power_on()
    assert twin.run_until("uart", timeout_ms=1500, match=" temp ") is not None, twin.uart_lines
    return twin


def test_a_floating_spi_bus_stays_quiet(fw_build) -> None:
    """No ESP32 (or an unpowered one): NSS and SCK are driven by nothing. Without pulls they pick up
    noise, and every NSS edge is an interrupt and a garbage frame; NSS pulled up and SCK pulled
    down (RM0090 8.3.1, 8.4.4) keep the bus idle."""
    with _app_running(fw_build.build_dir, floating=("NSS", "SCK")) as twin:
        mark = len(twin.events)
        twin.run(ms=200)
        changes = [e for e in twin.events[mark:] if e.kind == "pin" and e.data["pin"] in ("PB12", "PB13")]
        assert changes == [], f"{len(changes)} level changes on NSS/SCK in 200 ms"
        assert (twin.pin("NSS"), twin.pin("SCK")) == (1, 0)


def test_back_to_back_transactions_stay_separate_frames(fw_build) -> None:
    """A master that ignores READY raises NSS and lowers it again at once: one pending EXTI bit for
    two edges, NSS reads low in the handler. The first frame must still end there (RM0090 12.3.6),
    not merge with the next one."""
    with _app_running(fw_build.build_dir) as twin:
        rx_count = twin.symbols.address_of("rx_count")
        assert rx_count is not None
        written: list[int] = []

        def on_write(uc: object, access: int, address: int, size: int, value: int, _ud: object) -> None:
            written.append(value)

        twin.uc.hook_add(UC_HOOK_MEM_WRITE, on_write, begin=rx_count, end=rx_count + 3)
        assert twin.wait_pin("READY", 1, timeout_ms=100)
        twin.spi_transfer(bytes(range(40)))
        twin.spi_transfer(bytes(range(30)), setup_us=5.0)   # NSS low again with no gap
        twin.run(ms=5)
        assert written and written[0] == 40, f"frame sizes seen: {written}"


@pytest.mark.parametrize(("lsi_hz", "hse_hz"), [(47_000, 8_000_000), (17_000, 8_000_000), (47_000, 0)],
                         ids=["lsi-fast", "lsi-slow", "lsi-fast-no-hse"])
def test_a_hardware_watchdog_survives_a_first_boot_compaction(fw_build, lsi_hz: int, hse_hz: int) -> None:
    """WDG_SW = 0: the IWDG runs from reset with 4096 x 4 LSI periods (0.35 s at 47 kHz), less than
    the 128 KB erase of a first boot whose journal sector holds no free position (old data), and
    less than the bounded wait for an absent HSE. The bootloader must not reset-loop there: it
    widens the watchdog first thing and reports the option bytes."""
    meta = LAYOUT.region("metadata")
    with Stm32Twin(hardware_watchdog=True, lsi_hz=lsi_hz, bor_level=3, hse_hz=hse_hz) as twin:
        twin.load_build(fw_build.build_dir, slot_b=False)
        twin.flash.wrp_sectors = {0, 1}
        twin.load_bytes(bytes(meta.size), meta.base)
        twin.power_on()
        twin.run(ms=4000)
        resets = [e.data["cause"] for e in twin.events if e.kind == "reset"]
        assert resets == ["power"], (resets, twin.uart_lines[:12])
        assert "boot: opt wdg hw bor 3 rdp 0 wrp 0x00000003" in twin.uart_lines
        assert any(line.startswith("app: start") for line in twin.uart_lines)
        assert twin.iwdg.running


def test_the_option_bytes_of_a_new_board_are_reported(fw_build) -> None:
    with Stm32Twin() as twin:
        twin.load_build(fw_build.build_dir, slot_b=False)
        twin.power_on()
        twin.run_until("uart", timeout_ms=500, match="jump")
        assert "boot: opt wdg sw bor off rdp 0 wrp 0x00000000" in twin.uart_lines
        assert not twin.iwdg.running   # a software watchdog starts only for a trial
