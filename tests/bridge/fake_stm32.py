"""A fake STM32 update agent: the device side of docs/protocol.md in Python, on a virtual clock.

It exists to test the bridge (esp32_mpy) and the reference master without the twin: it follows the
documented rules (pipelining, seq and retransmission window, BEGIN refusals, WRITE at next_offset,
VERIFY, ACTIVATE, RESET, trial boot with confirm or revert) and lets a test inject faults: corrupted
frames in either direction, READY stuck low, a power cut, an application that never confirms.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from fota_formats.image import validate_image
from fota_formats.spec import IMAGE, LAYOUT, PROTOCOL

P = PROTOCOL.constants
CMD = PROTOCOL.tables["commands"]
ST = PROTOCOL.tables["status"]
SES = PROTOCOL.tables["session"]
IC = IMAGE.constants
HDR = PROTOCOL.structs["frame_header"]
INFO = PROTOCOL.structs["info_resp"]
BEGIN = PROTOCOL.structs["begin_req"]
OFFSET = PROTOCOL.structs["offset_resp"]
II = IMAGE.structs["image_info"]
TRAILER_SIZE = IMAGE.structs["image_trailer"].size
II_OFF = IC["IMAGE_INFO_OFFSET"]

WORD_PROGRAM_MS = 0.016      # DS8626 typical, x32
SECTOR_ERASE_MS = 1000.0     # 128 KB sector, typical
BOOT_MS = 30.0               # reset to the agent serving the link


class Clock:
    """Virtual milliseconds shared by the fake device and the fake port."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, ms: float) -> None:
        self.now += ms


@dataclass
class Session:
    target: int
    size: int
    sha: bytes
    info: bytes
    version: tuple[int, int, int, int]
    state: int = SES["RECEIVING"]
    status: int = 0
    next: int = 0


@dataclass
class Faults:
    """Hooks a test sets: each receives the transaction number and may change the bytes."""

    mosi: Callable[[int, bytearray], None] | None = None
    miso: Callable[[int, bytearray], None] | None = None
    ready_stuck_low: bool = False
    app_confirms: dict[int, bool] = field(default_factory=lambda: {0: True, 1: True})
    power_cut_at_write: int | None = None   # cut power when the n-th WRITE from now arrives
    power_cut_on: int | None = None         # cut power (once) when a frame with this command arrives:
    power_cut_executed: bool = False        # after executing it (its flash work done), else before
    journal_fails: int = 0                  # this many ACTIVATE journal appends fail (ERR_FLASH)


def _crc(b: bytes | bytearray | memoryview) -> int:
    import zlib
    return zlib.crc32(b) & 0xFFFFFFFF


def frame(cmd: int, status: int, seq: int, payload: bytes = b"") -> bytes:
    head = HDR.pack(marker=P["FRAME_MARKER"], cmd=cmd, status=status, seq=seq, len=len(payload))
    body = head + payload
    return body + struct.pack("<I", _crc(body))


class FakeSTM32:
    """Device state: two slots of flash, a journal reduced to its newest record, a RAM session."""

    def __init__(self, clock: Clock, images: dict[int, bytes], running: int = 0) -> None:
        self.clock = clock
        self.faults = Faults()
        self.flash = {s: bytearray(b"\xff" * LAYOUT.slot_region(s).size) for s in (0, 1)}
        for slot, img in images.items():
            self.flash[slot][: len(img)] = img
        self.meta = {"active": running, "state": IC["META_STATE_CONFIRMED"], "attempts": 0,
                     "prev": running, "result": IC["RESULT_NONE"], "seq": 1}
        self.uid = bytes(range(1, 13))
        self.erases = 0
        self.writes = 0
        self.transactions = 0
        self.confirm_at: float | None = None
        self._boot()

    # -- power and boot -----------------------------------------------------------------------

    def _boot(self) -> None:
        """Bootloader decision, reduced: trial image boots if valid and confirms itself later."""
        m = self.meta
        self.session: Session | None = None
        self.last_seq: int | None = None
        self.history: dict[int, tuple[int, bytes]] = {}
        self.pending = frame(CMD["NOP"] | P["RESPONSE_FLAG"], ST["ERR_NO_RESPONSE"], 0)
        self.reset_at: float | None = None
        self.confirm_at = None
        if m["state"] == IC["META_STATE_TRIAL"]:
            slot = m["active"]
            if self.slot_state(slot) != IC["SLOT_STATE_VALID"]:
                self._revert(IC["RESULT_REVERTED_INVALID"])
            elif not self.faults.app_confirms.get(slot, True):
                # Every trial attempt ends in a watchdog reset: the bootloader gives up.
                self._revert(IC["RESULT_REVERTED_NO_CONFIRM"])
            else:
                self.running = slot
                self.confirm_at = self.clock.now + 2000.0
        elif m["state"] == 0:
            # No journal record (a bootloader before the first-boot record): the newest valid image.
            valid = [s for s in (0, 1) if self.slot_state(s) == IC["SLOT_STATE_VALID"]]
            self.running = max(valid, key=self.slot_version)
        else:
            self.running = m["active"]
        self.busy_until = self.clock.now + BOOT_MS
        self.flash_free = 0.0
        self.program_ms = 0.0
        self.boot_time = self.clock.now

    def _revert(self, result: int) -> None:
        m = self.meta
        m.update(active=m["prev"], state=IC["META_STATE_CONFIRMED"], attempts=0, result=result,
                 seq=m["seq"] + 1)
        self.running = m["active"]
        self.busy_until = self.clock.now + 3 * 1000.0   # three watchdog periods

    def power_cut(self) -> None:
        self._boot()

    def _tick(self) -> None:
        now = self.clock.now
        if self.reset_at is not None and now >= self.reset_at:
            self._boot()
        if self.confirm_at is not None and now >= self.confirm_at:
            self.meta.update(state=IC["META_STATE_CONFIRMED"], result=IC["RESULT_CONFIRMED"],
                             seq=self.meta["seq"] + 1)
            self.confirm_at = None

    def ready(self) -> bool:
        self._tick()
        return not self.faults.ready_stuck_low and self.clock.now >= self.busy_until

    # -- slots ----------------------------------------------------------------------------------

    def slot_image(self, slot: int) -> bytes | None:
        f = self.flash[slot]
        ii = II.unpack(f, II_OFF)
        if ii["magic"] != IC["IMAGE_INFO_MAGIC"] or ii["image_size"] > len(f) - TRAILER_SIZE:
            return None
        return bytes(f[: ii["image_size"] + TRAILER_SIZE])

    def slot_state(self, slot: int) -> int:
        f = self.flash[slot]
        if all(b == 0xFF for b in f[: II_OFF + II.size]):
            return IC["SLOT_STATE_EMPTY"]
        img = self.slot_image(slot)
        try:
            if img is None:
                raise ValueError
            validate_image(img, slot)
        except Exception:
            return IC["SLOT_STATE_INVALID"]
        return IC["SLOT_STATE_VALID"]

    def slot_version(self, slot: int) -> tuple[int, int, int, int]:
        ii = II.unpack(self.flash[slot], II_OFF)
        if self.slot_state(slot) != IC["SLOT_STATE_VALID"]:
            return (0, 0, 0, 0)
        return (ii["ver_major"], ii["ver_minor"], ii["ver_patch"], ii["build"])

    # -- the link -------------------------------------------------------------------------------

    def transfer(self, tx: bytes | bytearray | memoryview) -> bytearray:
        """One NSS-low period: returns what the device clocked out on MISO."""
        self._tick()
        n = len(tx)
        self.transactions += 1
        k = self.transactions
        if self.clock.now < self.busy_until or self.faults.ready_stuck_low:
            return bytearray(b"\xff" * n)    # DMA not armed: nothing sensible on MISO
        rx = bytearray(n)
        rx[: min(n, len(self.pending))] = self.pending[:n]
        req = bytearray(tx)
        if self.faults.mosi:
            self.faults.mosi(k, req)
        if req[2] == CMD["WRITE"] and self.faults.power_cut_at_write is not None:
            self.faults.power_cut_at_write -= 1
            if self.faults.power_cut_at_write <= 0:
                self.faults.power_cut_at_write = None
                self.power_cut()          # the frame is lost with the RAM session
                return rx
        if req[2] == self.faults.power_cut_on:
            self.faults.power_cut_on = None
            if self.faults.power_cut_executed:
                self._handle(req)         # e.g. ACTIVATE's record is on flash, its response lost
            self.power_cut()
            return rx
        if self.faults.miso:
            self.faults.miso(k, rx)
        # The agent answers a WRITE before it programs it, so programming overlaps the next
        # transfer; the next frame is handled (READY high again) once the flash is free.
        self.program_ms = 0.0
        self.pending, busy = self._handle(req)
        self.busy_until = max(self.clock.now, self.flash_free) + busy
        self.flash_free = self.busy_until + self.program_ms
        return rx

    def _handle(self, req: bytearray) -> tuple[bytes, float]:
        busy = 0.02
        if len(req) < HDR.size + 4:
            return frame(P["RESPONSE_FLAG"], ST["ERR_FRAME"], 0), busy
        h = HDR.unpack(req)
        if h["marker"] != P["FRAME_MARKER"] or h["len"] > P["MAX_PAYLOAD"] \
                or HDR.size + h["len"] + 4 > len(req):
            return frame(P["RESPONSE_FLAG"], ST["ERR_FRAME"], 0), busy
        end = HDR.size + h["len"]
        if struct.unpack_from("<I", req, end)[0] != _crc(req[:end]):
            return frame(P["RESPONSE_FLAG"], ST["ERR_CRC"], 0), busy
        cmd, seq = h["cmd"], h["seq"]
        payload = bytes(req[HDR.size:end])
        crc = _crc(req[:end])
        rflag = cmd | P["RESPONSE_FLAG"]
        if cmd == CMD["NOP"]:
            return frame(rflag, ST["OK"], seq), busy
        if cmd != CMD["INFO"]:
            if self.last_seq is None:
                return frame(rflag, ST["ERR_SEQ"], seq), busy
            old = self.history.get(seq)
            if seq in (self.last_seq, (self.last_seq - 1) & 0xFFFF) and old and old[0] == crc:
                return old[1], busy
            if seq != (self.last_seq + 1) & 0xFFFF:
                return frame(rflag, ST["ERR_SEQ"], seq), busy
        st, out, busy = self._execute(cmd, payload)
        resp = frame(rflag, st, seq, out)
        self.last_seq = seq
        self.history = {k: v for k, v in self.history.items() if k == (seq - 1) & 0xFFFF}
        self.history[seq] = (crc, resp)
        return resp, busy

    def _execute(self, cmd: int, p: bytes) -> tuple[int, bytes, float]:
        s = self.session
        if cmd == CMD["INFO"]:
            return ST["OK"], self._info(), 0.05
        if cmd == CMD["BEGIN"]:
            return self._begin(p)
        if cmd == CMD["WRITE"]:
            return self._write(p)
        if cmd == CMD["VERIFY"]:
            if s is None or s.next != s.size:
                return ST["ERR_STATE"], b"", 0.02
            if hashlib.sha256(self.flash[s.target][: s.size]).digest() != s.sha:
                s.state, s.status = SES["FAILED"], ST["ERR_HASH"]
                return ST["ERR_HASH"], b"", 25.0
            s.state = SES["VERIFIED"]
            return ST["OK"], b"", 25.0
        if cmd == CMD["ACTIVATE"]:
            if s is None or s.state not in (SES["VERIFIED"], SES["ACTIVATED"]):
                return ST["ERR_NOT_VERIFIED"], b"", 0.02
            if s.state == SES["VERIFIED"] and self.faults.journal_fails > 0:
                self.faults.journal_fails -= 1
                s.status = ST["ERR_FLASH"]        # the session stays VERIFIED: ACTIVATE may be retried
                return ST["ERR_FLASH"], b"", 0.5
            if s.state == SES["VERIFIED"]:
                m = self.meta
                m.update(prev=self.running, active=s.target, state=IC["META_STATE_TRIAL"],
                         attempts=IC["META_TRIAL_ATTEMPTS"], result=IC["RESULT_NONE"], seq=m["seq"] + 1)
                s.state = SES["ACTIVATED"]
            return ST["OK"], b"", 0.5
        if cmd == CMD["RESET"]:
            self.reset_at = self.clock.now + P["RESET_DELAY_MS"]
            return ST["OK"], b"", P["RESET_DELAY_MS"] + BOOT_MS
        if cmd == CMD["ABORT"]:
            self.session = None
            return ST["OK"], b"", 0.02
        return ST["ERR_COMMAND"], b"", 0.02

    def _info(self) -> bytes:
        rv = self.slot_version(self.running)
        av, bv = self.slot_version(0), self.slot_version(1)
        s = self.session
        return INFO.pack(
            proto_version=P["PROTOCOL_VERSION"], running_slot=self.running, max_chunk=P["MAX_CHUNK"],
            run_major=rv[0], run_minor=rv[1], run_patch=rv[2], run_build=rv[3],
            a_state=self.slot_state(0), a_major=av[0], a_minor=av[1], a_patch=av[2], a_build=av[3],
            b_state=self.slot_state(1), b_major=bv[0], b_minor=bv[1], b_patch=bv[2], b_build=bv[3],
            meta_active=self.meta["active"], meta_state=self.meta["state"], meta_seq=self.meta["seq"],
            meta_attempts=self.meta["attempts"], last_result=self.meta["result"],
            session_state=s.state if s else SES["IDLE"], session_status=s.status if s else 0,
            session_next=s.next if s else 0, uid=self.uid, temp_centi=3150,
            uptime_ms=int(self.clock.now - self.boot_time))

    def _begin(self, p: bytes) -> tuple[int, bytes, float]:
        b = BEGIN.unpack(p)
        t, size = b["target_slot"], b["image_size"]
        ver = (b["ver_major"], b["ver_minor"], b["ver_patch"], b["build"])
        s = self.session
        if t not in (0, 1):
            return ST["ERR_RANGE"], b"", 0.02
        if self.meta["state"] == IC["META_STATE_TRIAL"] or (s and s.state == SES["ACTIVATED"]):
            return ST["ERR_STATE"], b"", 0.02
        if t == self.running:
            return ST["ERR_TARGET_RUNNING"], b"", 0.02
        if size == 0 or size > LAYOUT.slot_region(t).size or size > LAYOUT.max_image_size:
            return ST["ERR_TOO_LARGE"], b"", 0.02
        ii = II.unpack(b["info"])
        if ii["magic"] != IC["IMAGE_INFO_MAGIC"] or ii["image_size"] + TRAILER_SIZE != size \
                or (ii["ver_major"], ii["ver_minor"], ii["ver_patch"], ii["build"]) != ver:
            return ST["ERR_IMAGE"], b"", 0.02
        if ii["slot"] != t or ii["load_addr"] != LAYOUT.slot_region(t).base:
            return ST["ERR_WRONG_SLOT"], b"", 0.02
        if ver[:3] <= self.slot_version(self.running)[:3] and not b["flags"] & P["BEGIN_FLAG_DOWNGRADE"]:
            return ST["ERR_VERSION"], b"", 0.02
        if s and (s.target, s.size, s.sha) == (t, size, b["sha256"]) \
                and s.state in (SES["RECEIVING"], SES["VERIFIED"]):
            return ST["OK"], OFFSET.pack(next_offset=s.next, image_size=size), 0.02
        sector = LAYOUT.sectors_of(LAYOUT.slot_region(t))[0].size
        n = -(-size // sector)
        self.flash[t][: n * sector] = b"\xff" * (n * sector)
        self.erases += n
        self.session = Session(t, size, b["sha256"], b["info"], ver)
        return ST["OK"], OFFSET.pack(next_offset=0, image_size=size), n * SECTOR_ERASE_MS

    def _write(self, p: bytes) -> tuple[int, bytes, float]:
        s = self.session
        if s is None or s.state != SES["RECEIVING"]:
            st = s.status if s and s.state == SES["FAILED"] else ST["ERR_STATE"]
            return st, b"", 0.02
        self.writes += 1
        off = struct.unpack_from("<I", p)[0]
        data = p[4:]
        resp = OFFSET.pack(next_offset=s.next, image_size=s.size)
        if not data or off + len(data) > s.size:
            return ST["ERR_RANGE"], resp, 0.02
        if off != s.next:
            if off + len(data) <= s.next and self.flash[s.target][off:off + len(data)] == data:
                return ST["OK"], resp, 0.02
            return ST["ERR_RANGE"], resp, 0.02
        if len(data) % 4 and off + len(data) != s.size:
            return ST["ERR_LENGTH"], resp, 0.02
        if off <= II_OFF < off + len(data):
            if off + len(data) < II_OFF + II.size:
                return ST["ERR_LENGTH"], resp, 0.02
            if data[II_OFF - off: II_OFF - off + II.size] != s.info:
                s.state, s.status = SES["FAILED"], ST["ERR_IMAGE"]
                return ST["ERR_IMAGE"], resp, 0.02
        self.flash[s.target][off:off + len(data)] = data
        s.next = off + len(data)
        self.program_ms = -(-len(data) // 4) * WORD_PROGRAM_MS
        return ST["OK"], OFFSET.pack(next_offset=s.next, image_size=s.size), 0.02


class FakePort:
    """The bridge's port interface over a FakeSTM32 (virtual time, SPI clock `hz`)."""

    def __init__(self, dev: FakeSTM32, hz: int = 10_000_000, exact_wait: bool = True) -> None:
        self.dev = dev
        if exact_wait:              # like the twin's wait_pin; else fotalink polls ready()
            self.wait_ready = self._wait_ready
        self.clock = dev.clock
        self.hz = hz
        self.resets = 0

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        self.clock.advance(len(tx) * 8 * 1000 / self.hz)
        rx[:] = self.dev.transfer(tx)

    def ready(self) -> bool:
        return self.dev.ready()

    def _wait_ready(self, timeout_ms: int) -> bool:
        end = self.clock.now + timeout_ms
        while not self.dev.ready():
            if self.clock.now >= end:
                return False
            now = self.clock.now
            events = (self.dev.busy_until, self.dev.reset_at, self.dev.confirm_at)
            self.clock.now = min([end] + [t for t in events if t is not None and t > now])
        return True

    def ticks_ms(self) -> int:
        return int(self.clock.now)

    def now_ms(self) -> float:
        return self.clock.now

    def sleep_ms(self, n: int) -> None:
        self.clock.advance(n)
        self.dev._tick()

    def reset_target(self) -> None:
        self.resets += 1
        self.dev.power_cut()
