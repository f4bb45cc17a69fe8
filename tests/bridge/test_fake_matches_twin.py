"""The fake STM32 answers frame for frame as the real firmware on the twin does: one script of raw
requests (each rule of docs/protocol.md that a bridge can run into: framing errors, sequence
numbers, the retransmission window, every command out of order, BEGIN's refusals, WRITE's offset,
length and information-block rules, a whole small update) goes to both devices, and every response
frame must be the same, byte for byte; INFO answers without the chip's UID, temperature and uptime.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest
from fota_formats.image import image_counter
from fota_formats.spec import IMAGE, PROTOCOL
from fota_testkit.bridge import CMD, INFO_RESP, Device, FakeDevice, TwinDevice, chip_neutral, exchange, frame
from stm32_fota.build import BuildResult

P = PROTOCOL.constants
ST = PROTOCOL.tables["status"]
BEGIN = PROTOCOL.structs["begin_req"]
HDR = PROTOCOL.structs["frame_header"]
CHUNK = P["MAX_CHUNK"]
HEADER_END = IMAGE.structs["image_header"].size   # BEGIN carries the image header


class Script:
    """Raw requests to one device; ``log`` collects what came back, comparable across devices."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.port = device.port()
        self.seq = 0
        self.log: list[tuple[str, object]] = []

    def raw(self, label: str, request: bytes) -> bytes:
        resp = exchange(self.port, request)
        if len(resp) > HDR.size and resp[2] == CMD["INFO"] | P["RESPONSE_FLAG"] and resp[3] == ST["OK"]:
            info = INFO_RESP.unpack(resp, HDR.size)
            self.log.append((label, (resp[:HDR.size], chip_neutral(info))))
        else:
            self.log.append((label, resp))
        return resp

    def send(self, label: str, cmd: int, payload: bytes = b"", seq: int | None = None) -> bytes:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        return self.raw(label, frame(cmd, 0, seq, payload))

    def begin(self, label: str, image: bytes, slot: int = 1, version: tuple[int, ...] = (1, 1, 0, 7),
              size: int | None = None, flags: int = 0, counter: int | None = None) -> bytes:
        payload = BEGIN.pack(target_slot=slot, flags=flags, ver_major=version[0], ver_minor=version[1],
                             ver_patch=version[2], build=version[3],
                             image_size=len(image) if size is None else size,
                             sha256=hashlib.sha256(image).digest(), header=image[:HEADER_END],
                             security_counter=(image_counter(image) or 0) if counter is None else counter)
        return self.send(label, CMD["BEGIN"], payload)

    def write(self, label: str, image: bytes, offset: int, n: int = CHUNK,
              data: bytes | None = None) -> bytes:
        chunk = image[offset:offset + n] if data is None else data
        return self.send(label, CMD["WRITE"], struct.pack("<I", offset) + chunk)


def _framing(s: Script, image: bytes) -> None:
    s.begin("BEGIN before any INFO: no sequence yet", image)
    good = bytearray(frame(CMD["INFO"], 0, 7))
    bad_crc = bytes(good[:-1] + bytes([good[-1] ^ 1]))
    s.raw("bad CRC", bad_crc)
    s.raw("bad marker", b"\x00\x00" + bytes(good[2:]))
    s.raw("length beyond the frame", bytes(good[:6]) + struct.pack("<H", 300) + bytes(good[8:]))
    s.raw("length beyond MAX_PAYLOAD", bytes(good[:6]) + struct.pack("<H", P["MAX_PAYLOAD"] + 1)
          + bytes(good[8:]))
    s.raw("shorter than a header", bytes(good[:5]))
    s.send("NOP with a payload", CMD["NOP"], b"\x01")
    s.send("INFO with a payload", CMD["INFO"], b"\x01")
    s.send("INFO", CMD["INFO"])
    s.send("unknown command", 0x33)
    s.send("VERIFY without a session", CMD["VERIFY"])
    s.send("ACTIVATE without a session", CMD["ACTIVATE"])
    s.send("CONFIRM when not on trial", CMD["CONFIRM"])
    s.send("ABORT without a session", CMD["ABORT"])
    s.write("WRITE without a session", image, 0)
    s.send("RESET with a payload", CMD["RESET"], b"\x00")
    s.send("a sequence number skipped", CMD["VERIFY"], seq=s.seq + 2)
    s.send("INFO after the skip", CMD["INFO"])


def _begin_refusals(s: Script, image: bytes, a_image: bytes, old_b: bytes) -> None:
    s.send("INFO", CMD["INFO"])
    s.send("BEGIN of the wrong length", CMD["BEGIN"], bytes(BEGIN.size - 1))
    s.begin("slot 2", image, slot=2)
    s.begin("the running slot", a_image, slot=0, version=(1, 1, 0, 1))
    s.begin("too large for the slot", image, size=300 * 1024)
    s.begin("size that disagrees with the block", image, size=len(image) + 4)
    s.begin("version that disagrees with the block", image, version=(1, 1, 1, 7))
    s.begin("Slot A image for Slot B", a_image, slot=1, version=(1, 1, 0, 1))
    s.begin("not newer than 1.0.0", old_b, version=(1, 0, 0, 7))
    s.begin("not newer than 1.0.0, downgrade allowed", old_b, version=(1, 0, 0, 7),
            flags=P["BEGIN_FLAG_DOWNGRADE"])
    s.begin("security counter 0, below the floor 1", image, counter=0)
    s.begin("security counter below the floor, downgrade allowed", image, counter=0,
            flags=P["BEGIN_FLAG_DOWNGRADE"])
    s.send("ABORT", CMD["ABORT"])
    s.send("INFO: nothing changed", CMD["INFO"])


def _update(s: Script, image: bytes) -> None:
    s.send("INFO", CMD["INFO"])
    s.begin("BEGIN", image)
    s.send("INFO: receiving", CMD["INFO"])
    s.begin("BEGIN again, same image: resume at 0", image)
    s.write("WRITE past next_offset", image, CHUNK)
    s.write("WRITE of a length not a multiple of 4", image, 0, n=CHUNK - 1)
    s.write("WRITE that cuts the image header", image, 0, n=HEADER_END - 16)
    first = s.write("WRITE chunk 0", image, 0)
    again = s.raw("the same frame again (lost response)", frame(CMD["WRITE"], 0, s.seq,
                                                                struct.pack("<I", 0) + image[:CHUNK]))
    assert again == first
    s.write("chunk 0 again, new seq, same bytes", image, 0)
    s.write("chunk 0 again, other bytes", image, 0, data=bytes(CHUNK))
    s.write("WRITE beyond the image", image, len(image) - 4, n=8, data=bytes(8))
    s.send("VERIFY before the last byte", CMD["VERIFY"])
    for off in range(CHUNK, len(image), CHUNK):
        s.write(f"WRITE at {off}", image, off, n=min(CHUNK, len(image) - off))
    s.send("INFO: all written, not verified", CMD["INFO"])
    s.send("ACTIVATE before VERIFY", CMD["ACTIVATE"])
    s.send("VERIFY", CMD["VERIFY"])
    s.send("VERIFY again", CMD["VERIFY"])
    s.send("INFO: verified", CMD["INFO"])
    s.send("ACTIVATE", CMD["ACTIVATE"])
    s.send("ACTIVATE again", CMD["ACTIVATE"])
    s.send("ABORT after ACTIVATE", CMD["ABORT"])
    s.begin("BEGIN after ACTIVATE", image)
    s.send("INFO: activated", CMD["INFO"])
    s.send("RESET", CMD["RESET"])
    s.port.sleep_ms(P["RESET_DELAY_MS"])
    s.seq = 0
    s.send("INFO after the reset: on trial", CMD["INFO"])
    s.begin("BEGIN on trial", image, slot=0, version=(1, 2, 0, 7))
    s.send("CONFIRM on trial", CMD["CONFIRM"])
    s.send("INFO: confirmed", CMD["INFO"])


def _abort_and_hash(s: Script, image: bytes) -> None:
    s.send("INFO", CMD["INFO"])
    s.begin("BEGIN", image)
    s.write("WRITE chunk 0", image, 0)
    s.send("ABORT", CMD["ABORT"])
    s.send("INFO: aborted", CMD["INFO"])
    s.begin("BEGIN again after ABORT: a new session", image)
    damaged = bytearray(image)
    damaged[-200] ^= 0xFF                  # a byte of the code: not what BEGIN announced
    for off in range(0, len(image), CHUNK):
        s.write(f"WRITE at {off}", bytes(damaged), off, n=min(CHUNK, len(image) - off))
    s.send("VERIFY of other bytes than BEGIN announced", CMD["VERIFY"])
    s.send("VERIFY again: the session failed", CMD["VERIFY"])
    s.write("WRITE into the failed session", image, 0)
    s.send("INFO: failed", CMD["INFO"])


def _send_all(s: Script, image: bytes) -> None:
    for off in range(0, len(image), CHUNK):
        s.write(f"WRITE at {off}", image, off, n=min(CHUNK, len(image) - off))


def _rollback(s: Script, img: dict[str, bytes]) -> None:
    s.send("INFO: floor 1", CMD["INFO"])
    s.begin("BEGIN of counter 0", img["c0"])
    s.begin("BEGIN of a counter-0 image announced as 1", img["c0"], counter=1)
    _send_all(s, img["c0"])
    s.send("VERIFY: the image's counter 0 is below the floor", CMD["VERIFY"])
    s.begin("BEGIN of a counter-1 image announced as 2", img["b"], counter=2)
    _send_all(s, img["b"])
    s.send("VERIFY: not the counter BEGIN announced", CMD["VERIFY"])
    s.begin("BEGIN of counter 2", img["c2"], version=(1, 2, 0, 7))
    _send_all(s, img["c2"])
    s.send("VERIFY", CMD["VERIFY"])
    s.send("ACTIVATE", CMD["ACTIVATE"])
    s.send("INFO: activated, floor still 1", CMD["INFO"])
    s.send("RESET", CMD["RESET"])
    s.port.sleep_ms(P["RESET_DELAY_MS"])
    s.seq = 0
    s.send("INFO after the reset: on trial, floor 1", CMD["INFO"])
    s.send("CONFIRM on trial", CMD["CONFIRM"])
    s.send("INFO: confirmed, floor 2", CMD["INFO"])
    s.begin("BEGIN of counter 1 into slot A, newer version", img["a_c1"], slot=0, version=(1, 3, 0, 7))
    s.begin("BEGIN of counter 2 into slot A, older version, downgrade allowed", img["a_c2_old"], slot=0,
            version=(1, 0, 5, 7), flags=P["BEGIN_FLAG_DOWNGRADE"])


SCRIPTS: dict[str, Callable[[Script, dict[str, bytes]], None]] = {
    "framing": lambda s, img: _framing(s, img["b"]),
    "begin_refusals": lambda s, img: _begin_refusals(s, img["b"], img["a"], img["old_b"]),
    "update": lambda s, img: _update(s, img["b"]),
    "abort_and_hash": lambda s, img: _abort_and_hash(s, img["b"]),
    "rollback": _rollback,
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_response_frame_is_the_same(fw_build: BuildResult, script: str) -> None:
    logs = []
    for device in (FakeDevice(), TwinDevice(fw_build.build_dir)):
        try:
            s = Script(device)
            # The twin's SPI slave loses the first transaction of its life (the fake does not):
            # a NOP takes that loss before the script starts.
            exchange(s.port, frame(CMD["NOP"], 0, 0))
            # larger than the real application, so both devices send images of the same size
            # Larger than the real application (about 26 KB), so that both devices send the same size.
            images = {"b": device.image(1, (1, 1, 0), 8 * CHUNK + 100, build=7),
                      "a": device.image(0, (1, 1, 0), 32 * 1024, build=1),
                      "old_b": device.image(1, (1, 0, 0), 32 * 1024, build=7)}
            if script == "rollback":
                images |= {"c0": device.image(1, (1, 1, 0), 8 * CHUNK + 100, counter=0),
                           "c2": device.image(1, (1, 2, 0), 8 * CHUNK + 100, counter=2),
                           "a_c1": device.image(0, (1, 3, 0), 32 * 1024, counter=1),
                           "a_c2_old": device.image(0, (1, 0, 5), 32 * 1024, counter=2)}
            SCRIPTS[script](s, images)
            logs.append(s.log)
        finally:
            device.close()
    fake, twin = logs
    if script == "rollback":   # what both must say, not only the same thing
        statuses = {label: resp[3] for label, resp in twin if isinstance(resp, bytes) and len(resp) > 3}
        assert statuses["BEGIN of counter 0"] == ST["ERR_ROLLBACK"]
        assert statuses["VERIFY: the image's counter 0 is below the floor"] == ST["ERR_ROLLBACK"]
        assert statuses["VERIFY: not the counter BEGIN announced"] == ST["ERR_IMAGE"]
        assert statuses["VERIFY"] == statuses["ACTIVATE"] == statuses["CONFIRM on trial"] == ST["OK"]
        assert statuses["BEGIN of counter 1 into slot A, newer version"] == ST["ERR_ROLLBACK"]
        assert statuses["BEGIN of counter 2 into slot A, older version, downgrade allowed"] == ST["OK"]
        floors = {label: info["security_floor"] for label, (_, info) in
                  ((lb, r) for lb, r in twin if isinstance(r, tuple))}
        assert floors == {"INFO: floor 1": 1, "INFO: activated, floor still 1": 1,
                          "INFO after the reset: on trial, floor 1": 1, "INFO: confirmed, floor 2": 2}
    assert [label for label, _ in fake] == [label for label, _ in twin]
    for (label, got_fake), (_, got_twin) in zip(fake, twin, strict=True):
        assert got_fake == got_twin, f"{label}: the fake answered {got_fake!r}, the firmware {got_twin!r}"
