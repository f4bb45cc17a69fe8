"""The metadata journal's record, read and written as the firmware does (stm32/common/journal.c).

    >>> rec = Record.confirmed(slot=0, seq=1, version=(1, 0, 0))
    >>> Record.unpack(rec.pack()) == rec
    True
    >>> newest(rec.pack() + b"\\xff" * RECORD_SIZE).slot_name
    'A'

The journal is the metadata sector: 36-byte records appended at the first erased position. A
record counts when its magic and its CRC-32 (IEEE 802.3, as zlib, over the bytes before the CRC)
hold; of those, the highest sequence number wins. Torn or erased positions are skipped. The field
layout is ``meta_record`` of ``spec/image.toml``, the one definition the C struct is generated from.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .spec import IMAGE

_REC = IMAGE.structs["meta_record"]
_C = IMAGE.constants
RECORD_SIZE = _REC.size
MAGIC = _C["META_RECORD_MAGIC"]
CONFIRMED = _C["META_STATE_CONFIRMED"]
TRIAL = _C["META_STATE_TRIAL"]
_CRC_OFFSET = next(f.offset for f in _REC.fields if f.name == "crc32")
_STATE_NAMES = {CONFIRMED: "confirmed", TRIAL: "trial"}
_RESULT_NAMES = {v: k.removeprefix("RESULT_") for k, v in _C.items() if k.startswith("RESULT_")}


@dataclass(frozen=True)
class Record:
    """One journal record, its fields named as in the spec without the ``mr_`` prefix."""

    seq: int
    active_slot: int
    state: int
    attempts_left: int = 0
    last_result: int = _C["RESULT_NONE"]
    prev_slot: int = 0
    version: tuple[int, int, int] = (0, 0, 0)
    build: int = 0
    security_counter: int = 0   # the anti-rollback floor the record carries

    @classmethod
    def confirmed(cls, slot: int, seq: int = 1, version: tuple[int, int, int] = (1, 0, 0),
                  last_result: int = _C["RESULT_NONE"], build: int = 0, security_counter: int = 0) -> Record:
        """A confirmed record booting ``slot``, as the firmware writes after a first boot."""
        return cls(seq=seq, active_slot=slot, state=CONFIRMED, last_result=last_result, prev_slot=slot,
                   version=version, build=build, security_counter=security_counter)

    def pack(self) -> bytes:
        """The record's RECORD_SIZE bytes, CRC included."""
        body = _REC.pack(magic=MAGIC, seq=self.seq, active_slot=self.active_slot, state=self.state,
                         attempts_left=self.attempts_left, last_result=self.last_result,
                         prev_slot=self.prev_slot, ver_major=self.version[0], ver_minor=self.version[1],
                         ver_patch=self.version[2], build=self.build,
                         security_counter=self.security_counter)[:_CRC_OFFSET]
        return body + zlib.crc32(body).to_bytes(4, "little")

    @classmethod
    def unpack(cls, raw: bytes) -> Record | None:
        """The record in ``raw`` (RECORD_SIZE bytes), or None when its magic or CRC is wrong."""
        if len(raw) != RECORD_SIZE:
            raise ValueError(f"a journal record is {RECORD_SIZE} bytes, got {len(raw)}")
        f = _REC.unpack(raw)
        if f["magic"] != MAGIC or zlib.crc32(raw[:_CRC_OFFSET]) != f["crc32"]:
            return None
        return cls(seq=f["seq"], active_slot=f["active_slot"], state=f["state"],
                   attempts_left=f["attempts_left"], last_result=f["last_result"], prev_slot=f["prev_slot"],
                   version=(f["ver_major"], f["ver_minor"], f["ver_patch"]), build=f["build"],
                   security_counter=f["security_counter"])

    @property
    def slot_name(self) -> str:
        return "AB"[self.active_slot] if self.active_slot < 2 else "?"

    @property
    def state_name(self) -> str:
        return _STATE_NAMES.get(self.state, f"unknown {self.state}")

    @property
    def result_name(self) -> str:
        """The RESULT_* name without its prefix, e.g. ``CONFIRMED``."""
        return _RESULT_NAMES.get(self.last_result, str(self.last_result))

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)


def records(sector: bytes) -> list[tuple[int, Record]]:
    """Every valid record of a journal sector with its offset, in flash order."""
    out = []
    for off in range(0, len(sector) - RECORD_SIZE + 1, RECORD_SIZE):
        rec = Record.unpack(sector[off:off + RECORD_SIZE])
        if rec is not None:
            out.append((off, rec))
    return out


def newest(sector: bytes) -> Record | None:
    """The valid record with the highest sequence number, or None (an empty or erased journal)."""
    valid = records(sector)
    return max((r for _, r in valid), key=lambda r: r.seq) if valid else None


def sector_with(recs: list[Record], sector_size: int) -> bytes:
    """A journal sector holding ``recs`` from its start, the rest erased (0xFF)."""
    data = b"".join(r.pack() for r in recs)
    if len(data) > sector_size:
        raise ValueError(f"{len(recs)} records do not fit a {sector_size}-byte sector")
    return data + b"\xff" * (sector_size - len(data))
