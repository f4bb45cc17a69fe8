"""The bridge's protocol client (esp32_mpy/fotalink.py) under CPython against the fake STM32."""

from __future__ import annotations

import hashlib
import random
import zlib

import fotalink
import pytest
from fake_stm32 import IC, SES, ST, Clock, FakePort, FakeSTM32
from fota_formats.spec import PROTOCOL
from fotalink import BridgeError, Link
from images import make_image

P = PROTOCOL.constants
OLD = make_image(0, (1, 0, 0), 60_000)
NEW = make_image(1, (1, 1, 0), 200_000, build=7)


class Src:
    def __init__(self, data: bytes, stop_at: int | None = None) -> None:
        self.data = data
        self.stop_at = stop_at
        self.reads: list[int] = []

    def readinto(self, off: int, mv: memoryview) -> None:
        if self.stop_at is not None and off >= self.stop_at:
            raise BridgeError("bridge stopped")
        self.reads.append(off)
        mv[:] = self.data[off:off + len(mv)]


def setup(running: int = 0, exact_wait: bool = True) -> tuple[FakeSTM32, FakePort, Link]:
    dev = FakeSTM32(Clock(), {0: OLD}, running=running)
    port = FakePort(dev, exact_wait=exact_wait)
    return dev, port, Link(port)


def begin(link: Link, img: bytes = NEW, slot: int = 1, version=(1, 1, 0, 7), flags: int = 0) -> int:
    return link.begin(slot, flags, version, len(img), hashlib.sha256(img).digest(), img[0x200:0x220])


def test_crc32_fallback_matches_zlib() -> None:
    rnd = random.Random(1)
    for n in (0, 1, 7, 160, 4112):
        data = rnd.randbytes(n)
        assert fotalink._crc32_soft(data) == zlib.crc32(data)
        assert fotalink.crc32(memoryview(data)) == zlib.crc32(data)


def test_erase_timeout_counts_the_sectors_the_image_touches() -> None:
    per = P["ERASE_TIMEOUT_PER_SECTOR_MS"]
    # one more sector than the image touches: BEGIN may also compact the journal (sector 11)
    assert fotalink.erase_timeout_ms(0, 1) == 2 * per
    assert fotalink.erase_timeout_ms(1, 128 * 1024 + 1) == 3 * per
    assert fotalink.erase_timeout_ms(1, 256 * 1024) == 3 * per


@pytest.mark.parametrize("exact_wait", [True, False], ids=["wait_ready", "polled"])
def test_full_update_programs_the_image_and_the_new_slot_confirms(exact_wait: bool) -> None:
    dev, port, link = setup(exact_wait=exact_wait)
    info = link.info()
    assert (info["running_slot"], info["run_major"], info["run_minor"]) == (0, 1, 0)
    assert info["a_state"] == IC["SLOT_STATE_VALID"] and info["b_state"] == IC["SLOT_STATE_EMPTY"]
    assert begin(link) == 0
    seen: list[int] = []
    frames = link.write_image(Src(NEW), 0, len(NEW), lambda done, size: seen.append(done))
    assert frames == -(-len(NEW) // P["MAX_CHUNK"])
    assert seen[-1] == len(NEW) and seen == sorted(seen)
    assert bytes(dev.flash[1][: len(NEW)]) == NEW
    link.verify()
    link.activate()
    link.reset()
    assert link.info()["running_slot"] == 1          # trial boot of the new slot
    port.sleep_ms(2500)                               # the fake app confirms after 2 s
    info = link.info()
    assert (info["running_slot"], info["run_minor"], info["run_build"]) == (1, 1, 7)
    assert info["meta_state"] == IC["META_STATE_CONFIRMED"]
    assert info["last_result"] == IC["RESULT_CONFIRMED"]
    assert link.retries == 0
    # Pipelined WRITEs: about one transaction per chunk, wire bytes close to the payload.
    assert link.wire_bytes / len(NEW) < 1.02


def _flip_every(n: int, start: int):
    def hook(k: int, buf: bytearray) -> None:
        if k >= start and k % n == 0 and len(buf) > 1000:   # WRITE transactions only
            buf[10] ^= 0x10         # in a request: the offset; in a response: next_offset
    return hook


@pytest.mark.parametrize("direction", ["mosi", "miso"])
def test_bit_flips_are_caught_by_the_crc_and_retried(direction: str) -> None:
    dev, _port, link = setup()
    link.info()
    begin(link)
    setattr(dev.faults, direction, _flip_every(7, 4))
    link.write_image(Src(NEW), 0, len(NEW))
    link.verify()
    dev.faults.mosi = dev.faults.miso = None
    assert link.retries > 3
    assert bytes(dev.flash[1][: len(NEW)]) == NEW


def test_truncated_frames_are_refused_and_resent() -> None:
    dev, _port, link = setup()
    link.info()
    begin(link)

    def drop(k: int, buf: bytearray) -> None:
        if k % 5 == 0 and len(buf) > 1000:
            del buf[600:]           # the master stopped clocking early: bytes lost
    dev.faults.mosi = drop
    link.write_image(Src(NEW), 0, len(NEW))
    dev.faults.mosi = None
    link.verify()
    assert link.retries > 3


def test_corruption_beyond_the_retry_limit_fails_without_activating() -> None:
    dev, _port, link = setup()
    link.info()
    begin(link)
    dev.faults.mosi = lambda k, buf: buf.__setitem__(9, buf[9] ^ 1)   # every frame from now on
    with pytest.raises(BridgeError, match="retries"):
        link.write_image(Src(NEW), 0, len(NEW))
    dev.faults.mosi = None
    assert dev.running == 0 and dev.meta["active"] == 0


@pytest.mark.parametrize("exact_wait", [True, False], ids=["wait_ready", "polled"])
def test_ready_never_high_is_a_bounded_error(exact_wait: bool) -> None:
    dev, _port, link = setup(exact_wait=exact_wait)
    dev.faults.ready_stuck_low = True
    t0 = dev.clock.now
    with pytest.raises(BridgeError, match="READY stayed low"):
        link.info()
    waited = dev.clock.now - t0
    total = (P["RETRIES"] + 1) * P["BOOT_TIMEOUT_MS"]     # RETRIES + 1 waits of the same timeout
    assert total <= waited <= total + 50
    assert dev.transactions == 0                    # nothing was clocked while READY was low
    assert link.retries == P["RETRIES"] + 1


@pytest.mark.parametrize("exact_wait", [True, False], ids=["wait_ready", "polled"])
def test_ready_timeout_waits_again_without_resending(exact_wait: bool) -> None:
    # READY comes back during the third wait: the request goes out once, when READY is high.
    dev, _port, link = setup(exact_wait=exact_wait)
    dev.busy_until = dev.clock.now + 2.5 * P["BOOT_TIMEOUT_MS"]
    info = link.info()
    assert info["running_slot"] == 0
    assert dev.transactions == 2                    # INFO, then the NOP that fetched its answer
    assert link.retries == 2                        # two timed-out waits, no resend


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"slot": 0, "img": make_image(0, (1, 1, 0), 9000)}, "ERR_TARGET_RUNNING"),
    ({"img": make_image(1, (1, 0, 0), 9000), "version": (1, 0, 0, 1)}, "ERR_VERSION"),
    ({"img": make_image(0, (1, 1, 0), 9000), "version": (1, 1, 0, 1)}, "ERR_WRONG_SLOT"),
])
def test_refusals_carry_the_device_status(kwargs, status: str) -> None:
    dev, _port, link = setup()
    link.info()
    with pytest.raises(BridgeError, match=status) as e:
        begin(link, **kwargs)
    assert e.value.status == ST[status]
    assert dev.erases == 0


def test_a_new_master_resumes_at_the_offset_the_device_reports() -> None:
    dev, port, link = setup()
    link.info()
    begin(link)
    half = 25 * P["MAX_CHUNK"]
    with pytest.raises(BridgeError, match="bridge stopped"):
        link.write_image(Src(NEW, stop_at=half), 0, len(NEW))
    erases = dev.erases
    again = Link(port)               # the bridge restarted: a fresh session
    again.info()
    nxt = begin(again)
    assert nxt == half and dev.erases == erases
    src = Src(NEW)
    again.write_image(src, nxt, len(NEW))
    again.verify()
    assert src.reads[0] == half
    assert bytes(dev.flash[1][: len(NEW)]) == NEW


def test_power_cut_mid_transfer_reports_the_lost_session() -> None:
    dev, _port, link = setup()
    link.info()
    begin(link)
    dev.faults.power_cut_at_write = 10
    with pytest.raises(BridgeError, match=r"^no update session any more \(the STM32 restarted\?\)$") as e:
        link.write_image(Src(NEW), 0, len(NEW))
    assert e.value.status == ST["ERR_STATE"]
    assert link.info()["session_state"] == SES["IDLE"] and dev.running == 0
