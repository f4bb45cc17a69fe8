"""The master side of the stm32-fota SPI link (docs/protocol.md), for MicroPython and CPython.

    link = Link(port)                  # port: transfer(tx, rx), ready(), ticks_ms(), sleep_ms(n),
    info = link.info()                 #       reset_target(); optional wait_ready(timeout_ms)
    nxt = link.begin(SLOT_B, 0, (1, 1, 0, 7), size, sha256, header, 1)
    link.write_image(source, nxt, size, progress)   # source.readinto(offset, mv) fills mv
    link.verify(); link.activate(); link.reset()

Every transaction sends one request and returns the response to the previous one; `call` sends a
request and then a NOP to fetch its response, `write_image` pipelines WRITE frames so that the
device programs chunk k while it receives chunk k + 1. Every wait is bounded by the spec's
timeouts; a frame is resent at most RETRIES times. All failures raise `BridgeError`.

Memory: one transmit frame whose payload doubles as the chunk buffer, one receive frame, and two
MIN_TRANSACTION buffers for short requests and NOP, all allocated once in `Link.__init__`, with the
views of them that a transaction of a full chunk needs: streaming allocates nothing per frame but
the CRC value (an int above MicroPython's small ints, 3 times out of 4) and the chunk's view.
"""

import struct

from fota_const import (
    BEGIN_REQ_FMT,
    BEGIN_REQ_SIZE,
    BOOT_TIMEOUT_MS,
    CMD_ABORT,
    CMD_ACTIVATE,
    CMD_BEGIN,
    CMD_CONFIRM,
    CMD_INFO,
    CMD_NOP,
    CMD_RESET,
    CMD_VERIFY,
    CMD_WRITE,
    ERASE_TIMEOUT_PER_SECTOR_MS,
    FRAME_CRC_SIZE,
    FRAME_HEADER_FMT,
    FRAME_HEADER_SIZE,
    FRAME_MARKER,
    FRAME_OVERHEAD,
    INFO_RESP_FIELDS,
    INFO_RESP_FMT,
    INFO_RESP_SIZE,
    MAX_CHUNK,
    MAX_FRAME,
    MAX_PAYLOAD,
    MIN_TRANSACTION,
    OFFSET_RESP_FMT,
    OFFSET_RESP_SIZE,
    PROTOCOL_VERSION,
    READY_TIMEOUT_MS,
    RESET_DELAY_MS,
    RESPONSE_FLAG,
    RETRIES,
    SECTORS,
    SESSION_ACTIVATED,
    SESSION_FAILED,
    SESSION_IDLE,
    SESSION_RECEIVING,
    SESSION_VERIFIED,
    SLOT_A_BASE,
    SLOT_B_BASE,
    ST_ERR_CRC,
    ST_ERR_FRAME,
    ST_ERR_NO_RESPONSE,
    ST_ERR_RANGE,
    ST_ERR_SEQ,
    ST_ERR_STATE,
    ST_OK,
    STATUS_NAMES,
    VERIFY_TIMEOUT_MS,
    WRITE_REQ_FMT,
    WRITE_REQ_SIZE,
)

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    from binascii import crc32 as _crc32_native
except ImportError:  # a MicroPython build without binascii.crc32
    _crc32_native = None

_HDR = FRAME_HEADER_SIZE
_OVH = FRAME_OVERHEAD
_WDATA = FRAME_HEADER_SIZE + WRITE_REQ_SIZE   # WRITE data follows the header and the offset field
_TICKS_PERIOD = const(1 << 30)  # MicroPython's ticks_ms() wraps at 2**30
_NO_RESPONSE = const(-1)        # _parse: no valid frame in the receive buffer
# CRC-32 of a frame followed by its own CRC (little-endian): a constant, whatever the frame. Checking
# a frame against it needs no unpacked CRC field, and it is a small int on MicroPython (no heap).
_CRC_RESIDUE = const(0x2144DF1C)
# Byte offsets of the header fields, from the spec's format (FRAME_HEADER_FIELDS order): the receive
# path reads them by index, since struct.unpack_from would allocate a tuple per frame.
_H_CMD = struct.calcsize(FRAME_HEADER_FMT[:2])
_H_STATUS = struct.calcsize(FRAME_HEADER_FMT[:3])
_H_SEQ = struct.calcsize(FRAME_HEADER_FMT[:4])
_H_LEN = struct.calcsize(FRAME_HEADER_FMT[:5])
_NEXT_OFFSET = struct.calcsize(OFFSET_RESP_FMT[:1])   # next_offset: the first field, a u32


class BridgeError(Exception):
    """The one error of the bridge: `reason` is a readable sentence, `status` the STM32's status
    code when the STM32 answered with one (else None)."""

    def __init__(self, reason, status=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def status_name(status):
    return STATUS_NAMES.get(status, f"0x{status:02X}")


_table = None


def _crc32_soft(data, crc=0):
    # Table-driven CRC-32 (IEEE 802.3, reflected, as zlib), 16-entry nibble table to keep RAM low.
    global _table
    if _table is None:
        t = []
        for i in range(16):
            c = i
            for _ in range(4):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _table = t
    t = _table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = t[(crc ^ b) & 15] ^ (crc >> 4)
        crc = t[(crc ^ (b >> 4)) & 15] ^ (crc >> 4)
    return crc ^ 0xFFFFFFFF


def crc32(data, crc=0):
    """zlib-compatible CRC-32 of a buffer; binascii's when the firmware has it."""
    if _crc32_native is not None:
        return _crc32_native(data, crc)   # unsigned on both runtimes: no masking (a second int)
    return _crc32_soft(data, crc)


def _u16(buf, i):
    """Little-endian u16 at buf[i] (no allocation)."""
    return buf[i] | buf[i + 1] << 8


def _u32(buf, i):
    """Little-endian u32 at buf[i] (no allocation below 2**30)."""
    return buf[i] | buf[i + 1] << 8 | buf[i + 2] << 16 | buf[i + 3] << 24


def erase_timeout_ms(target_slot, size):
    """READY bound after BEGIN: ERASE_TIMEOUT_PER_SECTOR_MS for each sector the image touches,
    plus one for the metadata sector, which BEGIN erases when it compacts a nearly full journal."""
    base = SLOT_B_BASE if target_slot else SLOT_A_BASE
    end = base + max(size, 1)
    n = 0
    for sbase, ssize in SECTORS:
        if sbase < end and sbase + ssize > base:
            n += 1
    return ERASE_TIMEOUT_PER_SECTOR_MS * (max(n, 1) + 1)


class Link:
    """Protocol client over a port object; see the module docstring."""

    def __init__(self, port):
        self.port = port
        self._tx = bytearray(MAX_FRAME)
        self._txmv = memoryview(self._tx)
        self._rx = bytearray(MAX_FRAME)
        self._rxmv = memoryview(self._rx)
        self._rxmin = self._rxmv[:MIN_TRANSACTION]    # receive view of a short transaction
        self._txcrc = self._txmv[:MAX_FRAME - FRAME_CRC_SIZE]   # CRC span of a full-chunk WRITE
        # CRC span (frame and CRC) of a WRITE response, the one response of every chunk
        self._rxoff = self._rxmv[:_OVH + OFFSET_RESP_SIZE]
        self._chunkmv = self._txmv[_WDATA:_WDATA + MAX_CHUNK]   # WRITE data area of a full chunk
        self._req = bytearray(MIN_TRANSACTION)
        self._reqmv = memoryview(self._req)
        nop = bytearray(MIN_TRANSACTION)
        self._nopmv = memoryview(nop)
        self._frame(self._nopmv, CMD_NOP, 0, 0)
        self._seq = 0
        self._wait = BOOT_TIMEOUT_MS   # READY bound for the next transaction
        self._rlen = 0                 # bytes clocked in the last transaction
        self.rcmd = 0
        self.rseq = 0
        self.rplen = 0
        self.max_chunk = MAX_CHUNK
        self._coff = -1                # image offset and length of the data in self._tx
        self._cn = 0
        self.transactions = 0
        self.retries = 0
        self.wire_bytes = 0
        self._wait_ready = getattr(port, "wait_ready", None)

    # -- framing --------------------------------------------------------------------------------

    def _frame(self, mv, cmd, seq, plen):
        """Write header and CRC around a payload already at mv[8:8 + plen]; return frame length."""
        struct.pack_into(FRAME_HEADER_FMT, mv, 0, FRAME_MARKER, cmd, 0, seq, plen)
        end = _HDR + plen
        span = self._txcrc if end == MAX_FRAME - FRAME_CRC_SIZE and mv is self._txmv else mv[:end]
        struct.pack_into("<I", mv, end, crc32(span))
        return end + FRAME_CRC_SIZE

    def _parse(self):
        """Decode the frame at the start of the receive buffer: its status, or _NO_RESPONSE."""
        rx = self._rx
        plen = _u16(rx, _H_LEN)
        if _u16(rx, 0) != FRAME_MARKER or plen > MAX_PAYLOAD or plen + _OVH > self._rlen:
            return _NO_RESPONSE
        n = plen + _OVH
        if crc32(self._rxoff if n == _OVH + OFFSET_RESP_SIZE else self._rxmv[:n]) != _CRC_RESIDUE:
            return _NO_RESPONSE
        self.rcmd = rx[_H_CMD]
        self.rseq = _u16(rx, _H_SEQ)
        self.rplen = plen
        return rx[_H_STATUS]

    def payload(self):
        """The payload of the last parsed response (a view into the receive buffer)."""
        return self._rxmv[_HDR:_HDR + self.rplen]

    # -- transactions ---------------------------------------------------------------------------

    def elapsed_ms(self, start):
        """Milliseconds of the port's clock since `start` (a ticks_ms() value; wraps like it)."""
        d = self.port.ticks_ms() - start
        return d + _TICKS_PERIOD if d < 0 else d

    def _ready_within(self, timeout_ms):
        port = self.port
        if self._wait_ready is not None:
            return self._wait_ready(timeout_ms)
        start = port.ticks_ms()
        while not port.ready():
            if self.elapsed_ms(start) >= timeout_ms:
                return port.ready()
            port.sleep_ms(1)
        return True

    def wait_ready(self, timeout_ms, what, name=""):
        """Wait for READY; a timeout is retried RETRIES times, then it is an error whose reason
        ends with `what` + `name` (joined only then: the wait itself allocates nothing)."""
        for _ in range(RETRIES + 1):
            if self._ready_within(timeout_ms):
                return
            self.retries += 1
        raise BridgeError(f"STM32 READY stayed low for {timeout_ms * (RETRIES + 1)} ms {what}{name}")

    def _xfer(self, mv, flen, what, name=""):
        """One transaction: wait for READY, clock the frame (filled to MIN_TRANSACTION). A full
        buffer (a full-chunk WRITE, a short transaction) goes out through the preallocated views."""
        self.wait_ready(self._wait, what, name)
        n = flen
        if n < MIN_TRANSACTION:
            n = MIN_TRANSACTION
            for i in range(flen, n):   # FILL_BYTE after the frame; stale chunk bytes otherwise
                mv[i] = 0
        self._rlen = n
        if n == MAX_FRAME:
            rx = self._rxmv
        elif n == MIN_TRANSACTION:
            rx = self._rxmin
        else:
            rx = self._rxmv[:n]
        self.port.transfer(mv if n == len(mv) else mv[:n], rx)
        self.transactions += 1
        self.wire_bytes += n

    def _next_seq(self):
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def call(self, cmd, plen=0, timeout_ms=READY_TIMEOUT_MS, name="request"):
        """Send a request whose payload is at self._req[8:8 + plen], fetch its response with NOP,
        resend (same seq) on ERR_CRC / ERR_FRAME / a corrupt or missing response / a response to
        something else. Returns the status; the payload is `payload()`."""
        seq = self._next_seq()
        flen = self._frame(self._reqmv, cmd, seq, plen)
        tries = 0
        while True:
            self._xfer(self._reqmv, flen, "before ", name)
            self._wait = timeout_ms
            self._xfer(self._nopmv, _OVH, "after ", name)
            self._wait = READY_TIMEOUT_MS
            st = self._parse()
            if (st >= 0 and st != ST_ERR_CRC and st != ST_ERR_FRAME and st != ST_ERR_NO_RESPONSE
                    and self.rcmd == cmd | RESPONSE_FLAG and self.rseq == seq):
                return st
            tries += 1
            self.retries += 1
            if tries > RETRIES:
                if st < 0:
                    why = "no valid response frame"
                elif st in (ST_ERR_CRC, ST_ERR_FRAME, ST_ERR_NO_RESPONSE):
                    why = status_name(st)
                else:
                    why = (f"answer to another request (cmd 0x{self.rcmd:02X} seq {self.rseq}, "
                           f"{status_name(st)})")
                raise BridgeError(f"{name} failed after {RETRIES} retries: {why}", None if st < 0 else st)

    def _expect_ok(self, st, name):
        if st != ST_OK:
            raise BridgeError(f"STM32 refused {name}: {status_name(st)}", st)

    # -- commands -------------------------------------------------------------------------------

    def info(self):
        """INFO (starts a new session of sequence numbers): a dict of the info_resp fields."""
        st = self.call(CMD_INFO, 0, READY_TIMEOUT_MS, "INFO")
        self._expect_ok(st, "INFO")
        if self.rplen != INFO_RESP_SIZE:
            got = self._rx[_HDR] if self.rplen else -1
            if got != PROTOCOL_VERSION:
                raise BridgeError(f"the STM32 speaks link protocol {got}, this bridge {PROTOCOL_VERSION}: "
                                  "update the bridge and the firmware together")
            raise BridgeError(f"INFO answered {self.rplen} bytes, expected {INFO_RESP_SIZE}")
        vals = struct.unpack_from(INFO_RESP_FMT, self._rx, _HDR)
        info = dict(zip(INFO_RESP_FIELDS, vals))  # noqa: B905 (no strict= in MicroPython)
        chunk = info["max_chunk"]
        self.max_chunk = MAX_CHUNK if chunk == 0 or chunk > MAX_CHUNK else chunk & ~3
        return info

    def begin(self, target_slot, flags, version, size, sha256, header, security_counter):
        """BEGIN; version = (major, minor, patch, build), header = the image's 32-byte header
        (file bytes 0..32), security_counter = its SEC_CNT TLV (the device refuses one below its
        floor: ERR_ROLLBACK). Returns the device's next_offset."""
        struct.pack_into(BEGIN_REQ_FMT, self._req, _HDR, target_slot, flags, version[2],
                         version[0], version[1], 0, version[3], size, sha256, header, security_counter)
        st = self.call(CMD_BEGIN, BEGIN_REQ_SIZE, erase_timeout_ms(target_slot, size), "BEGIN")
        self._expect_ok(st, "BEGIN")
        return self._offset("BEGIN")

    def _offset(self, name):
        if self.rplen < OFFSET_RESP_SIZE:
            raise BridgeError(f"{name} answered {self.rplen} bytes, expected {OFFSET_RESP_SIZE}")
        return _u32(self._rx, _HDR + _NEXT_OFFSET)

    def verify(self):
        self._expect_ok(self.call(CMD_VERIFY, 0, VERIFY_TIMEOUT_MS, "VERIFY"), "VERIFY")

    def activate(self):
        # A journal append may compact the journal: one sector erase (docs/protocol.md).
        self._expect_ok(self.call(CMD_ACTIVATE, 0, ERASE_TIMEOUT_PER_SECTOR_MS, "ACTIVATE"), "ACTIVATE")

    def abort(self):
        self._expect_ok(self.call(CMD_ABORT, 0, READY_TIMEOUT_MS, "ABORT"), "ABORT")

    def confirm(self):
        self._expect_ok(self.call(CMD_CONFIRM, 0, ERASE_TIMEOUT_PER_SECTOR_MS, "CONFIRM"), "CONFIRM")

    def reset(self):
        """RESET: its response is never fetched (the device resets RESET_DELAY_MS after it)."""
        flen = self._frame(self._reqmv, CMD_RESET, self._next_seq(), 0)
        self._xfer(self._reqmv, flen, "before RESET")
        self.port.sleep_ms(RESET_DELAY_MS)
        self._wait = BOOT_TIMEOUT_MS

    def pulse_reset(self):
        """Reset the STM32 through NRST; the next transaction may wait BOOT_TIMEOUT_MS."""
        self.port.reset_target()
        self._wait = BOOT_TIMEOUT_MS

    def load(self, source, offset, n):
        """The image bytes [offset, offset + n) in the transmit buffer's WRITE data area (a view);
        read from `source` only when the buffer does not hold them already."""
        mv = self._chunkmv if n == MAX_CHUNK else self._txmv[_WDATA:_WDATA + n]
        if self._coff != offset or self._cn < n:
            self._coff = -1
            source.readinto(offset, mv)
            self._coff = offset
            self._cn = n
        return mv

    def write_image(self, source, offset, size, progress=None):
        """Stream [offset, size) of the image: source.readinto(off, mv) must fill mv with the
        image bytes at `off`. WRITE k travels with the response to WRITE k - 1. After a link error
        the device's own next offset (INFO) says where to continue; the chunk in the transmit
        buffer is reused when it is still the right one. Returns the number of WRITE frames."""
        tx = self._txmv
        chunk = self.max_chunk
        pend_seq = -1          # seq of the WRITE whose response is still outstanding
        pend_end = 0
        errors = 0
        frames = 0
        while offset < size or pend_seq >= 0:
            if offset < size:
                n = size - offset
                if n > chunk:
                    n = chunk
                self.load(source, offset, n)
                seq = self._next_seq()
                struct.pack_into(WRITE_REQ_FMT, tx, _HDR, offset)
                flen = self._frame(tx, CMD_WRITE, seq, WRITE_REQ_SIZE + n)
                self._xfer(tx, flen, "after WRITE")
                self._wait = READY_TIMEOUT_MS
                frames += 1
                sent_seq = seq
                sent_end = offset + n
            else:
                self._xfer(self._nopmv, _OVH, "after WRITE")
                self._wait = READY_TIMEOUT_MS
                sent_seq = -1
                sent_end = offset
            if pend_seq >= 0:
                st = self._parse()
                good = st == ST_OK and self.rcmd == CMD_WRITE | RESPONSE_FLAG and self.rseq == pend_seq
                if good and self._offset("WRITE") == pend_end:
                    errors = 0
                    if progress is not None:
                        progress(pend_end, size)
                elif st >= 0 and st not in (ST_OK, ST_ERR_CRC, ST_ERR_FRAME, ST_ERR_SEQ, ST_ERR_RANGE,
                                            ST_ERR_NO_RESPONSE) and self.rseq == pend_seq:
                    raise BridgeError(f"STM32 refused WRITE at {pend_end}: {status_name(st)}", st)
                else:
                    errors += 1
                    self.retries += 1
                    if errors > RETRIES:
                        why = "no valid response frame" if st < 0 else status_name(st)
                        raise BridgeError(f"link errors beyond {RETRIES} retries at offset {pend_end}: {why}",
                                          None if st < 0 else st)
                    offset = self.resync()
                    pend_seq = -1
                    continue
            pend_seq = sent_seq
            pend_end = sent_end
            offset = sent_end
        return frames

    def resync(self):
        """New session (INFO): the offset the device expects next. Raises when its update
        session is no longer receiving (a flash error, a reset that lost the session)."""
        info = self.info()
        if info["session_state"] != SESSION_RECEIVING:
            st = info["session_status"]
            state = info["session_state"]
            # No failure status: the session is simply gone (a reset): not allowed in this state.
            if state == SESSION_IDLE:
                why = "no update session any more (the STM32 restarted?)" if not st else \
                    "the STM32 ended its update session: " + status_name(st)
            elif state == SESSION_FAILED:
                why = "the STM32's update session failed: " + status_name(st)
            else:
                why = "the STM32's update session is no longer receiving (it is %s)" % (
                    "verified" if state == SESSION_VERIFIED else "activated" if state == SESSION_ACTIVATED
                    else "in state %d" % state)  # noqa: UP031
            raise BridgeError(why, st or ST_ERR_STATE)
        return info["session_next"]
