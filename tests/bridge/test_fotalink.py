"""The bridge's protocol client (esp32_mpy/fotalink.py) under CPython, against the fake STM32 and the
STM32 twin running the real firmware (the ``device`` fixture: each scenario runs on both, with the
same assertions). Faults on the wire are made at the port, the same way for both devices."""

from __future__ import annotations

import hashlib
import random
import zlib

import fotalink
import pytest
from fota_formats.image import image_counter
from fota_formats.spec import IMAGE, PROTOCOL
from fota_testkit.bridge import Device, WirePort
from fota_testkit.fake_stm32 import Clock, FakePort, FakeSTM32
from fotalink import BridgeError, Link

P = PROTOCOL.constants
ST = PROTOCOL.tables["status"]
SES = PROTOCOL.tables["session"]
IC = IMAGE.constants
NEW_VERSION, NEW_BUILD = (1, 1, 0), 7
CONFIRM_WAIT_MS = 10_000
# Images of a few chunks: the twin programs its flash word by word in emulation (seconds per 100 KB).
SIZE = 64 * 1024


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


def begin(link: Link, img: bytes, slot: int = 1, version=(*NEW_VERSION, NEW_BUILD), flags: int = 0) -> int:
    return link.begin(slot, flags, version, len(img), hashlib.sha256(img).digest(), img[:32],
                      image_counter(img))


def new_image(device: Device, size: int = SIZE) -> bytes:
    return device.image(1, NEW_VERSION, size, build=NEW_BUILD)


def until_confirmed(link: Link, port: WirePort) -> dict:
    """INFO every 100 ms until the journal's newest record is CONFIRMED (the self-test passed)."""
    waited = 0
    while True:
        info = link.info()
        if info["meta_state"] == IC["META_STATE_CONFIRMED"] or waited >= CONFIRM_WAIT_MS:
            return info
        port.sleep_ms(100)
        waited += 100


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
def test_full_update_programs_the_image_and_the_new_slot_confirms(device: Device, exact_wait: bool) -> None:
    new = new_image(device)
    port = device.port(exact_wait)
    link = Link(port)
    info = link.info()
    retries = link.retries       # (the twin loses the first SPI transaction of its life: one retry)
    assert (info["running_slot"], info["run_major"], info["run_minor"], info["run_build"]) == (0, 1, 0, 0)
    assert info["a_state"] == IC["SLOT_STATE_VALID"] and info["b_state"] == IC["SLOT_STATE_EMPTY"]
    assert (info["meta_active"], info["meta_state"], info["meta_seq"]) == (0, IC["META_STATE_CONFIRMED"], 1)
    assert begin(link, new) == 0
    seen: list[int] = []
    wire0 = link.wire_bytes
    frames = link.write_image(Src(new), 0, len(new), lambda done, size: seen.append(done))
    wire = link.wire_bytes - wire0
    assert frames == -(-len(new) // P["MAX_CHUNK"])
    assert seen[-1] == len(new) and seen == sorted(seen)
    written = link.info()          # every byte written, not verified yet: the slot is not valid yet
    assert device.slot_bytes(1, len(new)) == new
    assert written["b_state"] == IC["SLOT_STATE_INVALID"]
    assert (written["session_state"], written["session_next"]) == (SES["RECEIVING"], len(new))
    link.verify()
    verified = link.info()
    assert verified["b_state"] == IC["SLOT_STATE_VALID"] and verified["session_state"] == SES["VERIFIED"]
    assert (verified["b_major"], verified["b_minor"], verified["b_build"]) == (1, 1, NEW_BUILD)
    link.activate()
    activated = link.info()
    assert (activated["meta_active"], activated["meta_state"]) == (1, IC["META_STATE_TRIAL"])
    assert (activated["meta_attempts"], activated["meta_seq"]) == (IC["META_TRIAL_ATTEMPTS"], 2)
    link.reset()
    trial = link.info()            # the bootloader took one trial attempt and booted the new slot
    assert (trial["running_slot"], trial["meta_state"]) == (1, IC["META_STATE_TRIAL"])
    assert (trial["meta_attempts"], trial["meta_seq"]) == (IC["META_TRIAL_ATTEMPTS"] - 1, 3)
    assert trial["session_state"] == SES["IDLE"]
    info = until_confirmed(link, port)
    assert (info["running_slot"], info["run_minor"], info["run_build"]) == (1, 1, NEW_BUILD)
    assert (info["meta_state"], info["meta_attempts"], info["meta_seq"]) == (IC["META_STATE_CONFIRMED"], 0, 4)
    assert info["last_result"] == IC["RESULT_CONFIRMED"]
    assert link.retries == retries
    # Pipelined WRITEs: about one transaction per chunk, wire bytes close to the payload.
    assert len(new) < wire < len(new) * 1.02


class FlipEvery:
    """Flips a bit of every n-th transaction from the start-th on, WRITE transactions only: in a
    request the offset, in a response next_offset."""

    def __init__(self, n: int, start: int) -> None:
        self.n, self.start, self.flips = n, start, 0

    def __call__(self, k: int, buf: bytearray) -> None:
        if k >= self.start and k % self.n == 0 and len(buf) > 1000:
            buf[10] ^= 0x10
            self.flips += 1


@pytest.mark.parametrize("direction", ["mosi", "miso"])
def test_bit_flips_are_caught_by_the_crc_and_retried(device: Device, direction: str) -> None:
    new = new_image(device, 48 * 1024)
    port = device.port()
    link = Link(port)
    link.info()
    begin(link, new)
    retries = link.retries
    flip = FlipEvery(3, 4)
    setattr(port, direction, flip)
    link.write_image(Src(new), 0, len(new))
    link.verify()                 # the whole image arrived: its hash is right
    assert flip.flips >= 3
    if direction == "mosi":        # each damaged request: ERR_CRC, sent again once
        assert link.retries - retries == flip.flips
    else:                          # a damaged response that a later one makes good costs nothing
        assert 1 <= link.retries - retries <= flip.flips
    assert device.slot_bytes(1, len(new)) == new


def test_truncated_frames_are_refused_and_resent(device: Device) -> None:
    new = new_image(device, 48 * 1024)
    port = device.port()
    link = Link(port)
    link.info()
    begin(link, new)

    def drop(k: int, buf: bytearray) -> None:
        if k % 3 == 0 and len(buf) > 1000:
            del buf[600:]           # the master stopped clocking early: bytes lost
    port.mosi = drop
    link.write_image(Src(new), 0, len(new))
    port.mosi = None
    link.verify()
    assert link.retries > 3
    assert device.slot_bytes(1, len(new)) == new


def test_corruption_beyond_the_retry_limit_fails_without_activating(device: Device) -> None:
    new = new_image(device, 20_000)
    port = device.port()
    link = Link(port)
    link.info()
    begin(link, new)
    port.mosi = lambda k, buf: buf.__setitem__(9, buf[9] ^ 1)   # every frame from now on
    with pytest.raises(BridgeError, match="retries") as e:
        link.write_image(Src(new), 0, len(new))
    assert e.value.status == ST["ERR_CRC"]
    info = Link(device.port()).info()
    assert (info["running_slot"], info["meta_active"]) == (0, 0)
    assert info["meta_state"] == IC["META_STATE_CONFIRMED"]
    assert (info["session_state"], info["session_next"]) == (SES["RECEIVING"], 0)


# An image for the other slot is refused at VERIFY (its SLOT TLV is signed, at the end of the image):
# tests/link/test_signed_refusals.py.
@pytest.mark.parametrize("case", ["target_running", "version", "too_large", "range"])
def test_refusals_carry_the_device_status_and_change_nothing(device: Device, case: str) -> None:
    a_img = device.image(0, (1, 1, 0), 9000, build=1)
    b_old = device.image(1, (1, 0, 0), 9000, build=1)
    b_new = new_image(device, 9000)
    slot, img, version, status = {
        "target_running": (0, a_img, (1, 1, 0, 1), "ERR_TARGET_RUNNING"),
        "version": (1, b_old, (1, 0, 0, 1), "ERR_VERSION"),          # not newer than 1.0.0
        "too_large": (1, b_new + bytes(300 * 1024), (*NEW_VERSION, NEW_BUILD), "ERR_TOO_LARGE"),
        "range": (2, b_new, (*NEW_VERSION, NEW_BUILD), "ERR_RANGE"),
    }[case]
    link = Link(device.port())
    link.info()
    before = device.flash()
    with pytest.raises(BridgeError, match=status) as e:
        begin(link, img, slot=slot, version=version)
    assert e.value.status == ST[status]
    assert device.flash() == before
    assert link.info()["session_state"] == SES["IDLE"]


def test_a_new_master_resumes_at_the_offset_the_device_reports(device: Device) -> None:
    new = new_image(device)
    link = Link(device.port())
    link.info()
    begin(link, new)
    half = 6 * P["MAX_CHUNK"]
    with pytest.raises(BridgeError, match="bridge stopped"):
        link.write_image(Src(new, stop_at=half), 0, len(new))
    again = Link(device.port())          # the bridge restarted: a fresh session
    info = again.info()
    assert (info["session_state"], info["session_next"]) == (SES["RECEIVING"], half)
    nxt = begin(again, new)
    assert nxt == half
    assert device.slot_bytes(1, half) == new[:half]      # the same image: nothing erased again
    src = Src(new)
    again.write_image(src, nxt, len(new))
    again.verify()
    assert src.reads[0] == half
    assert device.slot_bytes(1, len(new)) == new


def test_power_cut_mid_transfer_reports_the_lost_session(device: Device) -> None:
    new = new_image(device, 48 * 1024)
    port = device.port()
    link = Link(port)
    link.info()
    begin(link, new)
    writes = {"n": 0}

    def cut_at_the_fifth_write(_k: int, req: bytes) -> None:
        if len(req) > 1000:
            writes["n"] += 1
            if writes["n"] == 5:
                device.power_cycle()      # the frame is lost with the RAM session
    port.before = cut_at_the_fifth_write
    with pytest.raises(BridgeError, match=r"^no update session any more \(the STM32 restarted\?\)$") as e:
        link.write_image(Src(new), 0, len(new))
    assert e.value.status == ST["ERR_STATE"]
    info = link.info()
    assert (info["session_state"], info["running_slot"], info["b_state"]) == \
        (SES["IDLE"], 0, IC["SLOT_STATE_INVALID"])        # partly written


# -- fake only: faults inside the device that the twin cannot produce on demand ----------------------

def fake_setup(exact_wait: bool = True) -> tuple[FakeSTM32, Link]:
    from fota_lab.images import make_image

    dev = FakeSTM32(Clock(), {0: make_image(0, (1, 0, 0), 60_000)})
    return dev, Link(FakePort(dev, exact_wait=exact_wait))


@pytest.mark.parametrize("exact_wait", [True, False], ids=["wait_ready", "polled"])
def test_ready_never_high_is_a_bounded_error(exact_wait: bool) -> None:
    # Fake only: READY held low by the device itself (the twin's agent always raises it).
    dev, link = fake_setup(exact_wait)
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
    # Fake only: a device busy for 2.5 READY timeouts (the twin's agent is never that slow).
    # READY comes back during the third wait: the request goes out once, when READY is high.
    dev, link = fake_setup(exact_wait)
    dev.busy_until = dev.clock.now + 2.5 * P["BOOT_TIMEOUT_MS"]
    info = link.info()
    assert info["running_slot"] == 0
    assert dev.transactions == 2                    # INFO, then the NOP that fetched its answer
    assert link.retries == 2                        # two timed-out waits, no resend
