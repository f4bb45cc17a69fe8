"""Helpers of the end-to-end scenarios: release folders made from the session's firmware build, and
one assertion of everything the scenarios check at the end (slot, version, LED, journal, server)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fota_lab.images import restamp
from fota_lab.lab import Lab

SLOT_LED = {"A": "green", "B": "orange"}


def make_release(build_dir: Path, out: Path, version: str, variant: str = "", size: int = 0) -> Path:
    """A release folder (slot-a.bin, slot-b.bin, version.txt) of ``version`` from a build;
    ``variant``: take slot-{a,b}-<variant>.bin (e.g. "hang")."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{variant}" if variant else ""
    for slot in ("a", "b"):
        src = (build_dir / f"slot-{slot}{suffix}.bin").read_bytes()
        (out / f"slot-{slot}.bin").write_bytes(restamp(src, version, size=size))
    (out / "version.txt").write_text(version + "\n")
    return out


def flashed_lab(root: Path, build_dir: Path) -> Lab:
    """A lab whose STM32 holds the build's bootloader and Slot A (1.0.0), everything started."""
    if root.exists():
        shutil.rmtree(root)
    from fota_testkit.keys import SIGNING_KEY_FILE

    lab = Lab(root, signing_key=SIGNING_KEY_FILE)   # the key the session's firmware build trusts
    try:
        lab.flash(build_dir, log=lambda _: None)
        lab.start()
    except BaseException:
        lab.stop()
        raise
    return lab


def assert_device(lab: Lab, slot: str, version: str, server_outcome: str | None,
                  last_result: str = "CONFIRMED") -> None:
    """The STM32 runs ``version`` from ``slot`` (its LED blinks), the journal says so, and the server's
    newest update record of this device ended with ``server_outcome`` (None: no update recorded)."""
    assert lab.wait_for(lambda: lab.led() == SLOT_LED[slot], 5.0), f"LED {lab.led()!r}, want {SLOT_LED[slot]}"
    lines = [x for x in lab.uart_lines() if x.startswith("app: start slot ")]
    assert lines and lines[-1].startswith(f"app: start slot {slot} v{version}+"), lines[-3:]
    j = lab.journal()
    if last_result == "NONE" and j is None:
        pass  # never updated: the journal is still empty
    else:
        assert j is not None, "the metadata journal is empty"
        got = (j.active_slot, j.state, j.version, j.last_result)
        assert got == (slot, "confirmed", version, last_result), j
    updates = lab.updates()
    if server_outcome is None:
        assert updates == [], updates
    else:
        assert updates, "the server recorded no update"
        assert updates[0]["outcome"] == server_outcome, updates[0]
