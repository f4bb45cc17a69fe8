"""The flash driver's block programming on the twin, through a real update: a programming error in
the middle of a block is reported (ERR_FLASH), the controller is left locked with its error flags
cleared, the words before the error stay programmed, and a later update succeeds.
"""

from __future__ import annotations

import pytest
from fota_formats.spec import LAYOUT
from fota_lab.master import LinkError
from fota_testkit.link import SESSION, ST, Builds, master, padded_image
from stm32_twin.board import Stm32Twin

FLASH_IF = 0x4002_3C00
FLASH_SR, FLASH_CR = FLASH_IF + 0x0C, FLASH_IF + 0x10
CR_LOCK = 1 << 31
SR_ERRORS = 0xF2          # OPERR, WRPERR, PGAERR, PGPERR, PGSERR (RM0090 section 3.9.4)


def test_write_protected_sector_fails_the_block_and_leaves_flash_locked(twin: Stm32Twin,
                                                                        builds: Builds) -> None:
    slot_b = LAYOUT.region("slot_b")
    sectors = LAYOUT.sectors_of(slot_b)
    first, second = sectors[0], sectors[1]
    image = padded_image(builds.image(builds.v110, "slot-b"), first.size + 64 * 1024)
    assert set(twin.flash_bytes(second.base, second.size)) == {0xFF}   # BEGIN will not erase it
    twin.flash.wrp_sectors = {second.number}

    with pytest.raises(LinkError) as e:
        master(twin).update(image, reset=False)
    assert e.value.status == ST["ERR_FLASH"], e.value

    assert twin.read_reg(FLASH_CR) == CR_LOCK           # cleared and locked after the failed block
    assert twin.read_reg(FLASH_SR) & SR_ERRORS == 0      # flags cleared for the next operation
    info = master(twin).info()
    assert info["session_state"] == SESSION["FAILED"] and info["session_status"] == ST["ERR_FLASH"]
    # Everything before the protected sector was programmed, nothing in it.
    assert twin.flash_bytes(first.base, first.size) == image[:first.size]
    assert set(twin.flash_bytes(second.base, second.size)) == {0xFF}

    twin.flash.wrp_sectors = set()
    r = master(twin).update(image, reset=False)
    assert r.outcome == "activated", r.reason
    assert twin.flash_bytes(slot_b.base, len(image)) == image
