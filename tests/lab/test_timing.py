"""The flash lower bound the demo compares the link with (fota_lab.timing): the twin's DS8626 figures,
only the sectors an image touches, minus the ones already blank."""

from __future__ import annotations

import doctest

import pytest
from fota_formats.spec import LAYOUT
from fota_lab import timing
from fota_lab.timing import LinkTimes, blank_sectors, flash_lower_bound_s, touched_sectors
from stm32_twin import ERASE_MS, PROGRAM_US

SLOT_A, SLOT_B = 0, 1


def test_docstring_example_runs() -> None:
    result = doctest.testmod(timing)
    assert result.attempted > 0 and result.failed == 0


def test_touched_sectors_follow_the_slot_layout() -> None:
    a = LAYOUT.sectors_of(LAYOUT.slot_region(SLOT_A))
    assert touched_sectors(1, SLOT_A) == [a[0].number]
    assert touched_sectors(a[0].size, SLOT_A) == [a[0].number]
    assert touched_sectors(a[0].size + 1, SLOT_A) == [a[0].number, a[1].number]
    b = LAYOUT.sectors_of(LAYOUT.slot_region(SLOT_B))
    assert touched_sectors(LAYOUT.max_image_size, SLOT_B) == [s.number for s in b][:2]


def test_lower_bound_is_erase_plus_word_programs_with_the_twins_figures() -> None:
    size = 130 * 1024 + 3                          # two sectors of Slot A (128 KB + 128 KB), 33,281 words
    sectors = [LAYOUT.sectors[n] for n in touched_sectors(size, SLOT_A)]
    erase_s = sum(ERASE_MS[s.size][2][0] for s in sectors) / 1000
    program_s = (size + 3) // 4 * PROGRAM_US["typical"] / 1e6
    assert flash_lower_bound_s(size, SLOT_A) == pytest.approx(erase_s + program_s)
    skipped = flash_lower_bound_s(size, SLOT_A, frozenset({sectors[0].number}))
    assert skipped == pytest.approx(erase_s + program_s - ERASE_MS[sectors[0].size][2][0] / 1000)


def test_blank_sectors_are_the_touched_ones_that_read_all_ff() -> None:
    b = LAYOUT.sectors_of(LAYOUT.slot_region(SLOT_B))
    written = b[0]

    def read(address: int, n: int) -> bytes:
        return b"\x00" * n if address == written.base else b"\xff" * n

    assert blank_sectors(read, written.size + 1, SLOT_B) == frozenset({b[1].number})
    assert blank_sectors(read, 100, SLOT_B) == frozenset()
    assert blank_sectors(read, 100, 7) == frozenset()        # not a slot: nothing to skip


def test_link_seconds_need_both_ends_in_order() -> None:
    assert LinkTimes().seconds is None
    assert LinkTimes(begin_ps=5, activated_ps=None).seconds is None
    assert LinkTimes(begin_ps=5 * 10**12, activated_ps=4 * 10**12).seconds is None
    assert LinkTimes(begin_ps=10**12, activated_ps=35 * 10**11).seconds == pytest.approx(2.5)
