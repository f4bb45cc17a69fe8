"""The Python journal module reads and writes records as the firmware does."""

from __future__ import annotations

import pytest
from fota_formats import journal
from fota_formats.spec import IMAGE

C = IMAGE.constants


def test_a_record_round_trips_and_is_36_bytes() -> None:
    rec = journal.Record(seq=7, active_slot=C["SLOT_B"], state=journal.TRIAL, attempts_left=2,
                         last_result=C["RESULT_NONE"], prev_slot=C["SLOT_A"], version=(1, 2, 300), build=9,
                         security_counter=0x01020304)
    raw = rec.pack()
    assert len(raw) == journal.RECORD_SIZE == 36
    assert raw[28:32] == bytes([4, 3, 2, 1])              # the floor, right before the CRC
    assert raw[:4] == C["META_RECORD_MAGIC"].to_bytes(4, "little")
    assert journal.Record.unpack(raw) == rec
    assert (rec.slot_name, rec.state_name, rec.version_text) == ("B", "trial", "1.2.300")


@pytest.mark.parametrize("byte", range(36))
def test_any_flipped_byte_makes_the_record_invalid(byte: int) -> None:
    raw = bytearray(journal.Record.confirmed(C["SLOT_A"], seq=3).pack())
    raw[byte] ^= 0x01
    assert journal.Record.unpack(bytes(raw)) is None


def test_newest_valid_record_wins_and_torn_or_erased_positions_are_skipped() -> None:
    a1 = journal.Record.confirmed(C["SLOT_A"], seq=1)
    b2 = journal.Record(seq=2, active_slot=C["SLOT_B"], state=journal.TRIAL, attempts_left=3,
                        prev_slot=C["SLOT_A"], version=(1, 1, 0))
    torn = bytearray(journal.Record.confirmed(C["SLOT_A"], seq=3).pack())
    torn[20:] = b"\xff" * 16                       # power lost half-way through programming
    sector = a1.pack() + b2.pack() + bytes(torn) + b"\xff" * 72
    assert [off for off, _ in journal.records(sector)] == [0, 36]
    assert journal.newest(sector) == b2
    assert journal.newest(b"\xff" * 144) is None


def test_sector_with_fills_the_rest_erased_and_refuses_overflow() -> None:
    recs = [journal.Record.confirmed(C["SLOT_A"], seq=s) for s in (1, 2)]
    sector = journal.sector_with(recs, 144)
    assert len(sector) == 144 and sector[72:] == b"\xff" * 72
    assert journal.newest(sector) == recs[1]
    with pytest.raises(ValueError, match="do not fit"):
        journal.sector_with(recs * 3, 100)


def test_a_record_of_the_wrong_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="36 bytes, got 35"):
        journal.Record.unpack(b"\x00" * 35)
