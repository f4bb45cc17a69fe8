"""Updates over the SPI link on the STM32 twin with the real binaries.

Each test starts from a device running v1.0.0 in slot A (fixture ``twin``) and drives it with the
reference master, in virtual time.
"""

from __future__ import annotations

from fota_formats.image import image_counter
from fota_formats.spec import IMAGE
from fota_lab.master import ANSWER_TIMEOUT_MS, TwinPort, UpdateResult
from fota_testkit.link import (
    CMD,
    SESSION,
    SLOT_A,
    SLOT_B,
    SLOT_COLOUR,
    ST,
    Builds,
    begin_payload,
    boot,
    drain_log,
    led_toggles,
    master,
    raw_call,
    region_bytes,
    status_of,
    write_payload,
)
from stm32_twin.board import Stm32Twin

IC = IMAGE.constants


def _check_running(twin: Stm32Twin, slot: int, version: tuple[int, int, int]) -> dict:
    info = master(twin).info()
    assert info["running_slot"] == slot
    assert (info["run_major"], info["run_minor"], info["run_patch"]) == version
    assert info["meta_active"] == slot and info["meta_state"] == IC["META_STATE_CONFIRMED"]
    # The slot's LED blinks, the other one stays dark.
    mark = len(twin.events)
    twin.run(ms=2100)
    toggles = led_toggles(twin, mark)
    assert toggles.get(SLOT_COLOUR[slot], 0) >= 4
    assert toggles.get(SLOT_COLOUR[1 - slot], 0) == 0
    return info


def test_update_a_to_b_then_b_to_a(twin: Stm32Twin, builds: Builds) -> None:
    new_b = builds.image(builds.v110, "slot-b")
    r = master(twin).update(new_b)
    assert r.outcome == "confirmed", r.reason
    info = _check_running(twin, SLOT_B, (1, 1, 0))
    assert info["last_result"] == IC["RESULT_CONFIRMED"]
    assert info["b_state"] == IC["SLOT_STATE_VALID"] and info["a_state"] == IC["SLOT_STATE_VALID"]
    assert twin.flash_bytes(0x0806_0000, len(new_b)) == new_b
    assert any("confirmed slot B v1.1.0" in line for line in twin.uart_lines)

    new_a = builds.image(builds.v120, "slot-a")
    r = master(twin).update(new_a)
    assert r.outcome == "confirmed", r.reason
    info = _check_running(twin, SLOT_A, (1, 2, 0))
    assert info["last_result"] == IC["RESULT_CONFIRMED"]
    assert (info["b_major"], info["b_minor"]) == (1, 1)   # the previous image stays as fallback


def test_refusals_leave_flash_untouched(twin: Stm32Twin, builds: Builds) -> None:
    m = master(twin)
    link = m.link
    m.info()
    before = twin.flash_snapshot()
    img_b_old = builds.image(builds.v100, "slot-b")      # same version as the running one
    img_a_new = builds.image(builds.v110, "slot-a")      # linked for A
    img_b_new = builds.image(builds.v110, "slot-b")
    refusals = {
        "target running": (begin_payload(img_a_new, SLOT_A), ST["ERR_TARGET_RUNNING"]),
        "too large": (begin_payload(img_b_new, SLOT_B, size=300 * 1024), ST["ERR_TOO_LARGE"]),
        "same version": (begin_payload(img_b_old, SLOT_B), ST["ERR_VERSION"]),
    }
    for what, (payload, expected) in refusals.items():
        st = raw_call(link, CMD["BEGIN"], payload, 2 * 2500)
        assert st == expected, f"{what}: got {st:#x}"
        assert twin.flash_snapshot() == before, what
    assert raw_call(link, CMD["ACTIVATE"]) == ST["ERR_NOT_VERIFIED"]
    assert raw_call(link, CMD["VERIFY"]) == ST["ERR_STATE"]
    assert twin.flash_snapshot() == before

    # A write outside the announced image, after a BEGIN that needed no erase (slot B is blank).
    assert raw_call(link, CMD["BEGIN"], begin_payload(img_b_new, SLOT_B), 2500) == ST["OK"]
    assert raw_call(link, CMD["WRITE"], write_payload(len(img_b_new), b"\0" * 8)) == ST["ERR_RANGE"]
    assert raw_call(link, CMD["WRITE"], write_payload(4096, img_b_new[4096:4096 + 64])) == ST["ERR_RANGE"]
    assert raw_call(link, CMD["ACTIVATE"]) == ST["ERR_NOT_VERIFIED"]
    assert twin.flash_snapshot() == before
    info = m.info()
    assert info["session_state"] == SESSION["RECEIVING"] and info["session_next"] == 0
    assert info["running_slot"] == SLOT_A


class CorruptingPort(TwinPort):
    """Flips a bit or drops a byte in some transactions, on MOSI (the request) or MISO (the
    response): every 2nd transaction that carries image data (the damage lands in a checked frame,
    whatever the image's size), alternating the kind of damage."""

    def __init__(self, board: object) -> None:
        super().__init__(board)
        self.n = 0
        self.damaged = 0

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        data = bytearray(tx)
        kind = -1
        if len(data) > 300:
            self.n += 1
            kind = (self.n // 2) % 4 if self.n % 2 == 0 else -1
        if kind == 0:
            data[len(data) // 2] ^= 0x10                      # bit flip in the request
        elif kind == 1:
            del data[20]                                       # byte lost on MOSI
            data.append(0)
        got = bytearray(self.board.spi_transfer(bytes(data), self.hz))
        if kind == 2:
            got[9] ^= 0x01                                     # bit flip in the response
        elif kind == 3:
            del got[5]                                         # byte lost on MISO
            got.append(0)
        self.damaged += kind >= 0
        rx[:] = got


def test_frame_corruption_is_retried(twin: Stm32Twin, builds: Builds) -> None:
    port = CorruptingPort(twin)
    img = builds.image(builds.v110, "slot-b")
    r = master(twin, port).update(img, reset=False)
    assert r.outcome == "activated"
    assert port.damaged >= 2 and r.retries >= 2
    assert twin.flash_bytes(0x0806_0000, len(img)) == img


def test_resume_after_master_restart(twin: Stm32Twin, builds: Builds) -> None:
    img = builds.image(builds.v110, "slot-b")
    first = master(twin).update(img, stop_at=8192)
    assert first.outcome == "stopped"
    info = master(twin).info()
    assert info["session_state"] == SESSION["RECEIVING"] and info["session_next"] == 8192
    second = master(twin).update(img)                     # a new master: new session, same image
    assert second.resumed_from == 8192
    assert second.outcome == "confirmed", second.reason
    # Only what was missing travelled the second time.
    assert second.wire_bytes < len(img) - 8192 + 2 * 4112


def test_hash_mismatch_refused_at_verify(twin: Stm32Twin, builds: Builds) -> None:
    img = builds.image(builds.v110, "slot-b")
    m = master(twin)
    link = m.link
    m.info()
    meta_before = region_bytes(twin, "metadata")
    import hashlib

    nxt = link.begin(SLOT_B, 0, (1, 1, 0, 0), len(img), hashlib.sha256(img).digest(), img[:32],
                     image_counter(img))
    from fota_lab.master import BytesSource

    link.write_image(BytesSource(img), nxt, len(img))
    # A bit of flash decays after it was programmed (1 -> 0, as flash can).
    off = 0x0806_0000 + len(img) // 2
    while twin.flash_bytes(off, 1)[0] == 0:
        off += 1
    byte = twin.flash_bytes(off, 1)[0]
    twin.write_flash(off - 0x0800_0000, bytes([byte & (byte - 1)]))   # lowest set bit cleared
    assert status_of(link.verify) == ST["ERR_HASH"]
    assert status_of(link.activate) == ST["ERR_NOT_VERIFIED"]
    assert region_bytes(twin, "metadata") == meta_before
    info = m.info()
    assert info["session_state"] == SESSION["FAILED"] and info["session_status"] == ST["ERR_HASH"]


def _reverted(twin: Stm32Twin, img: bytes, confirm_timeout_ms: float) -> UpdateResult:
    """The whole update, reset included, as a user runs it: the master must report the revert."""
    mark = len(twin.uart_lines)
    r = master(twin).update(img, confirm_timeout_ms=confirm_timeout_ms)
    assert (r.outcome, r.reason) == ("reverted", "REVERTED_WATCHDOG"), (r.outcome, r.reason)
    info = r.info_after
    assert info is not None
    assert info["running_slot"] == SLOT_A and (info["run_major"], info["run_minor"]) == (1, 0)
    assert info["last_result"] == IC["RESULT_REVERTED_WATCHDOG"]
    assert info["meta_active"] == SLOT_A and info["meta_state"] == IC["META_STATE_CONFIRMED"]
    # Every trial boot was spent before the bootloader went back (the log of the last boot may
    # still be draining from the RAM ring when the master has its answer).
    drain_log(twin)
    jumps = [line for line in twin.uart_lines[mark:] if line.startswith("boot: jump slot")]
    left = range(IC["META_TRIAL_ATTEMPTS"] - 1, -1, -1)
    trials = [f"boot: jump slot B v1.1.0+0 (trial, {n} left)" for n in left]
    assert jumps == [*trials, "boot: jump slot A v1.0.0+0 (revert-attempts)"], jumps
    boot(twin, power=False)
    mark = len(twin.events)
    twin.run(ms=1100)
    assert led_toggles(twin, mark).get("green", 0) >= 2
    return r


def test_hanging_image_is_reverted(twin: Stm32Twin, builds: Builds) -> None:
    # The hang build answers nothing after the reset: the master retries INFO until the
    # bootloader has gone back to slot A (within ANSWER_TIMEOUT_MS), and reports the revert.
    r = _reverted(twin, builds.image(builds.v110, "slot-b-hang"), confirm_timeout_ms=1000)
    assert any("variant hang" in line for line in twin.uart_lines)
    assert r.phases_ms["boot"] <= ANSWER_TIMEOUT_MS


def test_image_that_never_confirms_is_reverted(twin: Stm32Twin, builds: Builds) -> None:
    # It answers INFO on trial (slot B); each attempt runs to the self-test deadline (8 s) and the
    # watchdog (4 s): 3 attempts fit in 60 s.
    r = _reverted(twin, builds.image(builds.v110, "slot-b-noconfirm"), confirm_timeout_ms=60_000)
    assert any("self-test failed" in line for line in twin.uart_lines)
    assert r.phases_ms["boot"] < 1000   # the first answer came from the trial image itself
