"""A fake STM32 update agent: the device side of docs/protocol.md in Python, on a virtual clock.

It exists to test the bridge (esp32_mpy) and the reference master without the twin, and to inject
the faults the twin cannot produce on demand: READY stuck low, a journal append that fails, an
application that never confirms, a bootloader without the first-boot record. It follows the rules
of the firmware it stands for (stm32/common/agent.c for the link, boot_decide.c for the boot):
pipelined responses, the retransmission window, BEGIN's checks in their order and its erase of the
touched sectors that are not blank, WRITE at next_offset, VERIFY, ACTIVATE, RESET, one journal
record per trial boot, confirm or revert.

The bridge scenarios of tests/bridge run against this fake and against the STM32 twin running the
real firmware, with the same assertions (fota_testkit.bridge), so that the fake cannot drift from
the firmware unnoticed.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

from fota_formats.image import HDR_SIZE, HEADER, ImageError, validate_image
from fota_formats.spec import IMAGE, LAYOUT, PROTOCOL
from fota_lab.images import lab_key
from stm32_fota.signing import ring_verifier

P = PROTOCOL.constants
CMD = PROTOCOL.tables["commands"]
ST = PROTOCOL.tables["status"]
SES = PROTOCOL.tables["session"]
IC = IMAGE.constants
HDR = PROTOCOL.structs["frame_header"]
INFO = PROTOCOL.structs["info_resp"]
BEGIN = PROTOCOL.structs["begin_req"]
OFFSET = PROTOCOL.structs["offset_resp"]
WRITE_REQ_SIZE = PROTOCOL.structs["write_req"].size
HEADER_END = HEADER.size      # BEGIN carries the image header: file bytes [0, 32)
# The fake's status per image fault, as agent.c maps them (fault_status).
FAULT_STATUS = {"wrong-slot": "ERR_WRONG_SLOT", "unsigned": "ERR_UNSIGNED", "unknown-key": "ERR_UNKNOWN_KEY",
                "bad-hash": "ERR_SIGNATURE", "bad-signature": "ERR_SIGNATURE", "bad-tlv-info": "ERR_TLV",
                "bad-tlv": "ERR_TLV", "unknown-tlv": "ERR_TLV", "misplaced-tlv": "ERR_TLV",
                "duplicate-tlv": "ERR_TLV", "missing-tlv": "ERR_TLV", "truncated": "ERR_TLV"}
NO_RECORD = 0xFF             # INFO's meta_active when the journal holds no valid record

WORD_PROGRAM_MS = 0.016      # DS8626 typical, x32
SECTOR_ERASE_MS = 1000.0     # 128 KB sector, typical, x32 (every sector of both slots is 128 KB)
BOOT_MS = 30.0               # reset to the agent serving the link
CONFIRM_MS = 2000.0          # the application's self-test, from its start to the confirmation
TRIAL_MS = 1000.0            # a trial boot that never confirms: until its watchdog reset


class Clock:
    """Virtual milliseconds shared by the fake device and the fake port."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, ms: float) -> None:
        self.now += ms


@dataclass
class Session:
    target: int = 0
    size: int = 0
    sha: bytes = b""
    info: bytes = b""
    state: int = SES["IDLE"]
    status: int = ST["OK"]
    next: int = 0
    counter: int = 0          # BEGIN's security counter


@dataclass
class Slot:
    """What the agent knows of a slot (image_summary): refreshed at boot, at BEGIN and at VERIFY."""

    state: int = IC["SLOT_STATE_EMPTY"]
    version: tuple[int, int, int, int] = (0, 0, 0, 0)
    counter: int = 0              # the image's security counter (SEC_CNT)
    key: bytes = bytes(4)         # the first 4 bytes of its KEYHASH


@dataclass
class Record:
    """The newest journal record (the journal reduced to it and its sequence number)."""

    active: int
    state: int
    attempts: int
    result: int
    seq: int
    floor: int = 0        # the anti-rollback floor (mr_security_counter)


@dataclass
class Faults:
    """Faults of the device itself, which the twin cannot produce on demand. Faults on the wire and
    power cuts are the port's business (fota_testkit.bridge), the same for the fake and the twin."""

    ready_stuck_low: bool = False
    app_confirms: dict[int, bool] = field(default_factory=lambda: {0: True, 1: True})
    journal_fails: int = 0                  # this many ACTIVATE journal appends fail (ERR_FLASH)
    no_first_boot_record: bool = False      # a bootloader that boots the newest image, unrecorded


def _crc(b: bytes | bytearray | memoryview) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


def frame(cmd: int, status: int, seq: int, payload: bytes = b"") -> bytes:
    head = HDR.pack(marker=P["FRAME_MARKER"], cmd=cmd, status=status, seq=seq, len=len(payload))
    body = head + payload
    return body + struct.pack("<I", _crc(body))


def _touched(slot: int, size: int) -> list[tuple[int, int, int]]:
    """(offset in the slot, sector size, bytes of [0, size) in it) of each sector the image touches."""
    region = LAYOUT.slot_region(slot)
    out = []
    for sector in LAYOUT.sectors_of(region):
        off = sector.base - region.base
        if off >= size:
            break
        out.append((off, sector.size, min(size - off, sector.size)))
    return out


class FakeSTM32:
    """Two slots of flash, the newest journal record, and the agent's RAM (session, slot summaries)."""

    def __init__(self, clock: Clock, images: dict[int, bytes], running: int = 0) -> None:
        self.clock = clock
        self.verify = ring_verifier([lab_key().public_key()])    # the key ring: the lab key
        self.faults = Faults()
        self.flash = {s: bytearray(b"\xff" * LAYOUT.slot_region(s).size) for s in (0, 1)}
        for slot, img in images.items():
            self.flash[slot][: len(img)] = img
        # The first-boot record of the bootloader (journal sequence numbers start at 1).
        self.record: Record | None = Record(running, IC["META_STATE_CONFIRMED"], 0, IC["RESULT_NONE"], 1,
                                            self._summary(running).counter)
        self.uid = bytes(range(1, 13))
        self.erases = 0               # sectors erased
        self.writes = 0
        self.transactions = 0
        self.running: int | None = running
        self._boot()

    # -- journal ----------------------------------------------------------------------------------

    def _append(self, active: int, state: int, attempts: int, result: int, counter: int = 0) -> None:
        """journal_append: the floor is carried forward, raised only by a larger ``counter``."""
        seq = self.record.seq + 1 if self.record else 1
        floor = max(counter, self.record.floor if self.record else 0)
        self.record = Record(active, state, attempts, result, seq, floor)

    def forget_journal(self) -> None:
        """An empty journal (erased sector 11)."""
        self.record = None

    # -- power and boot (boot_decide.c) -----------------------------------------------------------

    def _boot(self) -> None:
        self.session = Session()
        self.cache: list[tuple[int, int, bytes]] = []     # (seq, request CRC, response), newest first
        self.last_seq: int | None = None
        self.pending = frame(CMD["NOP"] | P["RESPONSE_FLAG"], ST["ERR_NO_RESPONSE"], 0)
        self.reset_at: float | None = None
        self.confirm_at: float | None = None
        self.flash_free = 0.0
        self.program_ms = 0.0
        floor = self.record.floor if self.record else 0
        # boot_enforce_floor: an image below the floor is not valid for the boot decision
        valid = [s for s in (0, 1) if self._summary(s).state == IC["SLOT_STATE_VALID"]
                 and self._summary(s).counter >= floor]
        self.running = self._decide(valid)
        self.busy_until = self.boot_time = self.clock.now + BOOT_MS
        self.slots = {s: self._summary(s) for s in (0, 1)}

    def _decide(self, valid: list[int]) -> int | None:
        """The slot the bootloader starts (None: nothing valid, it stays), appending its records."""
        r = self.record
        watchdog = False                    # this boot follows a watchdog reset
        while True:
            if r is None or r.state not in (IC["META_STATE_CONFIRMED"], IC["META_STATE_TRIAL"]):
                if not valid:
                    return None
                # boot_pick_highest: the higher counter, then the newer version, then slot A
                rank = {s: (self._summary(s).counter, self._summary(s).version[:3]) for s in valid}
                best = max(reversed(valid), key=rank.__getitem__)
                if not self.faults.no_first_boot_record:
                    self._append(best, IC["META_STATE_CONFIRMED"], 0, IC["RESULT_NONE"], rank[best][0])
                return best
            active, other = r.active, 1 - r.active
            if r.state == IC["META_STATE_CONFIRMED"]:
                return active if active in valid else other if other in valid else None
            if active not in valid:
                if other not in valid:
                    return None
                self._append(other, IC["META_STATE_CONFIRMED"], 0, IC["RESULT_REVERTED_INVALID"])
                return other
            if r.attempts == 0:
                if other not in valid:
                    return active           # the last resort: the trial image again
                result = IC["RESULT_REVERTED_WATCHDOG"] if watchdog else IC["RESULT_REVERTED_NO_CONFIRM"]
                self._append(other, IC["META_STATE_CONFIRMED"], 0, result)
                return other
            self._append(active, IC["META_STATE_TRIAL"], r.attempts - 1, r.result)
            r = self.record
            if self.faults.app_confirms.get(active, True):
                self.confirm_at = self.clock.now + BOOT_MS + CONFIRM_MS
                return active
            self.clock.advance(TRIAL_MS)    # the self-test gives up, the watchdog resets the chip
            watchdog = True

    def power_cut(self) -> None:
        self._boot()

    def _tick(self) -> None:
        now = self.clock.now
        if self.reset_at is not None and now >= self.reset_at:
            self._boot()
        if self.confirm_at is not None and now >= self.confirm_at:
            self.confirm_at = None
            self._confirm()

    def _confirm(self) -> int:
        r = self.record
        if r is None or r.state != IC["META_STATE_TRIAL"] or r.active != self.running:
            return ST["ERR_STATE"]
        self._append(r.active, IC["META_STATE_CONFIRMED"], 0, IC["RESULT_CONFIRMED"],
                     self._summary(r.active).counter)
        return ST["OK"]

    def ready(self) -> bool:
        self._tick()
        # After RESET the link is not armed again (app/link.c): READY stays low until the reboot.
        return not self.faults.ready_stuck_low and self.running is not None and self.reset_at is None \
            and self.clock.now >= self.busy_until

    # -- slots (image.c) ----------------------------------------------------------------------------

    def _check(self, slot: int) -> tuple[Slot, str | None, int]:
        """The slot's summary, the fault that refused it (None: valid) and the image's size."""
        f = self.flash[slot]
        if f[:HEADER_END].count(0xFF) == HEADER_END:
            return Slot(IC["SLOT_STATE_EMPTY"]), "erased", 0
        h = HEADER.unpack(f)
        if h["magic"] != IC["IMAGE_MAGIC"]:
            return Slot(IC["SLOT_STATE_INVALID"]), "bad-magic", 0
        version = (h["ver_major"], h["ver_minor"], h["ver_revision"], h["ver_build"])
        try:
            info = validate_image(bytes(f), slot, allow_trailing=True, verify=self.verify)
        except ImageError as e:
            return Slot(IC["SLOT_STATE_INVALID"], version), e.fault, 0
        summary = Slot(IC["SLOT_STATE_VALID"], version, info.security_counter, info.key_hash[:4])
        return summary, None, info.size

    def _summary(self, slot: int) -> Slot:
        return self._check(slot)[0]

    def slot_image(self, slot: int) -> bytes | None:
        """The image file in ``slot`` as the flash holds it, or None when it is not valid."""
        _, fault, size = self._check(slot)
        return None if fault else bytes(self.flash[slot][:size])

    # -- the link (agent.c) -------------------------------------------------------------------------

    def transfer(self, tx: bytes | bytearray | memoryview) -> bytearray:
        """One NSS-low period: returns what the device clocked out on MISO."""
        self._tick()
        n = len(tx)
        self.transactions += 1
        if not self.ready():
            return bytearray(b"\xff" * n)    # DMA not armed: nothing sensible on MISO
        rx = bytearray(n)
        rx[: min(n, len(self.pending))] = self.pending[:n]
        req = bytearray(tx)
        # The agent answers a WRITE before it programs it, so programming overlaps the next
        # transfer; the next frame is handled (READY high again) once the flash is free.
        self.program_ms = 0.0
        self.pending, busy = self._handle(req)
        self.busy_until = max(self.clock.now, self.flash_free) + busy
        self.flash_free = self.busy_until + self.program_ms
        return rx

    def _handle(self, req: bytearray) -> tuple[bytes, float]:
        busy = 0.02
        cmd, seq = (req[2], struct.unpack_from("<H", req, 4)[0]) if len(req) >= HDR.size else (CMD["NOP"], 0)
        rflag = cmd | P["RESPONSE_FLAG"]
        if len(req) < HDR.size + 4 or struct.unpack_from("<H", req)[0] != P["FRAME_MARKER"]:
            return frame(rflag, ST["ERR_FRAME"], seq), busy
        h = HDR.unpack(req)
        if h["len"] > P["MAX_PAYLOAD"] or HDR.size + h["len"] + 4 > len(req):
            return frame(rflag, ST["ERR_FRAME"], seq), busy
        end = HDR.size + h["len"]
        crc = _crc(req[:end])
        if struct.unpack_from("<I", req, end)[0] != crc:
            return frame(rflag, ST["ERR_CRC"], seq), busy
        payload = bytes(req[HDR.size:end])
        if cmd == CMD["NOP"]:
            return frame(rflag, ST["OK"] if not payload else ST["ERR_LENGTH"], seq), busy
        if cmd != CMD["INFO"]:
            for c_seq, c_crc, c_resp in self.cache:
                if (c_seq, c_crc) == (seq, crc):
                    return c_resp, busy
            if self.last_seq is None or seq != (self.last_seq + 1) & 0xFFFF:
                return frame(rflag, ST["ERR_SEQ"], seq), busy
        st, out, busy = self._execute(cmd, payload)
        resp = frame(rflag, st, seq, out)
        self.last_seq = seq
        self.cache = [(seq, crc, resp)] + ([] if cmd == CMD["INFO"] else self.cache[:1])
        return resp, busy

    def _execute(self, cmd: int, p: bytes) -> tuple[int, bytes, float]:
        s = self.session
        if cmd not in (CMD["BEGIN"], CMD["WRITE"]) and cmd <= CMD["CONFIRM"] and p:
            return ST["ERR_LENGTH"], b"", 0.02
        if cmd == CMD["INFO"]:
            return ST["OK"], self._info(), 0.05
        if cmd == CMD["BEGIN"]:
            return self._begin(p)
        if cmd == CMD["WRITE"]:
            return self._write(p)
        if cmd == CMD["VERIFY"]:
            return self._verify()
        if cmd == CMD["ACTIVATE"]:
            if s.state == SES["ACTIVATED"]:
                return ST["OK"], b"", 0.02
            if s.state != SES["VERIFIED"]:
                return ST["ERR_NOT_VERIFIED"], b"", 0.02
            if self.faults.journal_fails > 0:
                self.faults.journal_fails -= 1
                s.status = ST["ERR_FLASH"]        # the session stays VERIFIED: ACTIVATE may be retried
                return ST["ERR_FLASH"], b"", 0.5
            self._append(s.target, IC["META_STATE_TRIAL"], IC["META_TRIAL_ATTEMPTS"], IC["RESULT_NONE"])
            s.state, s.status = SES["ACTIVATED"], ST["OK"]
            return ST["OK"], b"", 0.5
        if cmd == CMD["RESET"]:           # answered first: the reset comes RESET_DELAY_MS later
            self.reset_at = self.clock.now + P["RESET_DELAY_MS"]
            return ST["OK"], b"", 0.02
        if cmd == CMD["ABORT"]:
            if s.state == SES["ACTIVATED"]:
                return ST["ERR_STATE"], b"", 0.02
            self.session = Session()
            return ST["OK"], b"", 0.02
        if cmd == CMD["CONFIRM"]:
            return self._confirm(), b"", 0.5
        return ST["ERR_COMMAND"], b"", 0.02

    def _info(self) -> bytes:
        run = self._summary(self.running) if self.running is not None else Slot()
        rv = run.version
        a, b = self.slots[0], self.slots[1]
        r, s = self.record, self.session
        meta = {"meta_active": r.active, "meta_state": r.state, "meta_seq": r.seq,
                "meta_attempts": r.attempts, "last_result": r.result} if r else \
            {"meta_active": NO_RECORD, "meta_state": 0, "meta_seq": 0, "meta_attempts": 0,
             "last_result": IC["RESULT_NONE"]}
        return INFO.pack(
            proto_version=P["PROTOCOL_VERSION"], running_slot=self.running, max_chunk=P["MAX_CHUNK"],
            run_major=rv[0], run_minor=rv[1], run_patch=rv[2], run_build=rv[3],
            a_state=a.state, a_major=a.version[0], a_minor=a.version[1], a_patch=a.version[2],
            a_build=a.version[3],
            b_state=b.state, b_major=b.version[0], b_minor=b.version[1], b_patch=b.version[2],
            b_build=b.version[3], **meta,
            session_state=s.state, session_status=s.status, session_next=s.next, uid=self.uid,
            temp_centi=3150, uptime_ms=int(self.clock.now - self.boot_time), security_floor=self._floor(),
            run_counter=run.counter, run_key=run.key)

    def _floor(self) -> int:
        return self.record.floor if self.record else 0

    def _offset(self) -> bytes:
        return OFFSET.pack(next_offset=self.session.next, image_size=self.session.size)

    def _begin_check(self, b: dict[str, int | bytes]) -> int:
        t, size = b["target_slot"], b["image_size"]
        r, s = self.record, self.session
        assert isinstance(t, int) and isinstance(size, int) and isinstance(b["header"], bytes)
        if t not in (0, 1):
            return ST["ERR_RANGE"]
        on_trial = r is not None and r.state == IC["META_STATE_TRIAL"] and r.active == self.running
        if on_trial or s.state == SES["ACTIVATED"]:
            return ST["ERR_STATE"]
        if t == self.running:
            return ST["ERR_TARGET_RUNNING"]
        if size == 0 or size > min(LAYOUT.slot_region(t).size, LAYOUT.max_image_size):
            return ST["ERR_TOO_LARGE"]
        h = HEADER.unpack(b["header"])
        ver = (b["ver_major"], b["ver_minor"], b["ver_patch"], b["build"])
        if h["magic"] != IC["IMAGE_MAGIC"] or h["hdr_size"] != HDR_SIZE or h["load_addr"] or h["flags"] \
                or (h["ver_major"], h["ver_minor"], h["ver_revision"], h["ver_build"]) != ver \
                or h["img_size"] % IC["IMAGE_BODY_ALIGN"] or h["img_size"] > size \
                or size - h["img_size"] < HDR_SIZE + h["protect_tlv_size"] + 4:
            return ST["ERR_IMAGE"]
        if int(b["security_counter"]) < self._floor():
            return ST["ERR_ROLLBACK"]
        running = self._summary(self.running).version if self.running is not None else (0, 0, 0, 0)
        if ver[:3] <= running[:3] and not int(b["flags"]) & P["BEGIN_FLAG_DOWNGRADE"]:
            return ST["ERR_VERSION"]
        return ST["OK"]

    def _begin(self, p: bytes) -> tuple[int, bytes, float]:
        if len(p) != BEGIN.size:
            return ST["ERR_LENGTH"], b"", 0.02
        b = BEGIN.unpack(p)
        st = self._begin_check(b)
        if st != ST["OK"]:
            return st, b"", 0.02
        t, size, s = b["target_slot"], b["image_size"], self.session
        if s.state in (SES["RECEIVING"], SES["VERIFIED"]) \
                and (s.target, s.size, s.sha, s.info, s.counter) == (t, size, b["sha256"], b["header"],
                                                                    b["security_counter"]):
            return ST["OK"], self._offset(), 0.02        # resume: same image, nothing erased
        busy = 0.02
        for off, sector_size, need in _touched(t, size):
            if self.flash[t][off:off + need].count(0xFF) == need:
                continue                                  # already erased: skipped
            self.flash[t][off:off + sector_size] = b"\xff" * sector_size
            self.erases += 1
            busy += SECTOR_ERASE_MS * sector_size / (128 * 1024)
        self.slots[t] = Slot(IC["SLOT_STATE_EMPTY"])
        self.session = Session(t, size, b["sha256"], b["header"], SES["RECEIVING"],
                               counter=int(b["security_counter"]))
        return ST["OK"], self._offset(), busy

    def _write(self, p: bytes) -> tuple[int, bytes, float]:
        s = self.session
        if len(p) <= WRITE_REQ_SIZE:
            return ST["ERR_LENGTH"], self._offset(), 0.02
        if s.state != SES["RECEIVING"]:
            return (s.status if s.state == SES["FAILED"] else ST["ERR_STATE"]), self._offset(), 0.02
        off = struct.unpack_from("<I", p)[0]
        data = p[WRITE_REQ_SIZE:]
        if off > s.size or len(data) > s.size - off:
            return ST["ERR_RANGE"], self._offset(), 0.02
        if off + len(data) <= s.next:     # already written: idempotent when the flash holds it
            same = self.flash[s.target][off:off + len(data)] == data
            return (ST["OK"] if same else ST["ERR_RANGE"]), self._offset(), 0.02
        if off != s.next:
            return ST["ERR_RANGE"], self._offset(), 0.02
        if len(data) % 4 and off + len(data) != s.size:
            return ST["ERR_LENGTH"], self._offset(), 0.02
        if off < HEADER_END:
            if off != 0 or len(data) < HEADER_END:
                return ST["ERR_LENGTH"], self._offset(), 0.02   # the header arrives whole
            if data[:HEADER_END] != s.info:
                s.state, s.status = SES["FAILED"], ST["ERR_IMAGE"]
                return ST["ERR_IMAGE"], self._offset(), 0.02
        self.writes += 1
        self.flash[s.target][off:off + len(data)] = data
        s.next = off + len(data)
        self.slots[s.target] = Slot(IC["SLOT_STATE_INVALID"])      # partly written
        self.program_ms = -(-len(data) // 4) * WORD_PROGRAM_MS
        return ST["OK"], self._offset(), 0.02

    def _verify(self) -> tuple[int, bytes, float]:
        s = self.session
        if s.state == SES["FAILED"]:
            return s.status, b"", 0.02
        if not (s.state == SES["VERIFIED"] or (s.state == SES["RECEIVING"] and s.next == s.size)):
            return ST["ERR_STATE"], b"", 0.02
        summary, fault, size = self._check(s.target)
        self.slots[s.target] = summary
        if hashlib.sha256(self.flash[s.target][: s.size]).digest() != s.sha:
            st = ST["ERR_HASH"]
        elif summary.state != IC["SLOT_STATE_VALID"] or size != s.size:
            st = ST[FAULT_STATUS.get(fault or "bad-tlv", "ERR_IMAGE")]
        elif summary.counter < self._floor():
            st = ST["ERR_ROLLBACK"]
        elif summary.counter != s.counter:
            st = ST["ERR_IMAGE"]
        else:
            s.state, s.status = SES["VERIFIED"], ST["OK"]
            return ST["OK"], b"", 25.0
        s.state, s.status = SES["FAILED"], st
        return st, b"", 25.0


class FakePort:
    """The bridge's port interface over a FakeSTM32 (virtual time, SPI clock `hz`)."""

    def __init__(self, dev: FakeSTM32, hz: int = 10_000_000, exact_wait: bool = True) -> None:
        self.dev = dev
        if exact_wait:              # like the twin's wait_pin; else fotalink polls ready()
            self.wait_ready = self._wait_ready
        self.clock = dev.clock
        self.hz = hz

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
        self.dev.power_cut()
