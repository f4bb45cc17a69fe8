"""End-to-end: power cuts of the STM32 during the transfer and during activation, and the update
server restarted in the middle of a transfer. The faults are injected from the SPI side of the twin
(lab.peer.before_transfer runs before every SPI transaction of the bridge), so they land at a
chosen point of the real exchange."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fota_formats.spec import LAYOUT, PROTOCOL
from fota_lab.lab import Lab
from fota_testkit.e2e import assert_device
from fota_testkit.relay import Relay

MARKER = PROTOCOL.constants["FRAME_MARKER"].to_bytes(2, "little")
WRITE = PROTOCOL.tables["commands"]["WRITE"]
ACTIVATE = PROTOCOL.tables["commands"]["ACTIVATE"]


def on_request(lab: Lab, command: int, nth: int, action: Callable[[], None]) -> list[int]:
    """Run ``action`` (in the virtual ESP32's thread, the twin held still) just before the ``nth``
    request frame carrying ``command`` goes out; after a power cut the STM32 gets its power back
    as soon as the ESP32 next looks at it (READY, SPI). Returns a list holding the count of such
    frames seen."""
    seen = [0]
    lab.peer.power_returns = True

    def hook(tx: bytes) -> None:
        if tx[:2] == MARKER and tx[2] == command:
            seen[0] += 1
            if seen[0] == nth:
                action()

    lab.peer.before_transfer = hook
    return seen


def test_power_cut_during_the_transfer(lab: Lab, releases: dict[str, Path]) -> None:
    lab.release(releases["1.1.0-big"])
    lab.sync()
    board = lab.board
    # Before the 6th WRITE: the power goes during the 3rd flash operation after it (programming).
    seen = on_request(lab, WRITE, 6, lambda: board.cut_power_at_flash_op(board.flash_op_count + 3))
    outcome = lab.update()
    assert seen[0] >= 6
    assert [e.data for e in board.events if e.kind == "power"].count("off") == 1, "one power cut expected"
    uart = lab.uart_lines()
    # After the cut the STM32 booted a valid image: 1.0.0 from A, the half-written B refused.
    after_cut = uart[uart.index("boot: slot B empty") + 1:]
    boot = after_cut[after_cut.index("boot: start v1.0.0+0 reset por clock hse-pll 168 MHz"):]
    assert any(x.startswith("boot: slot B invalid") for x in boot[:4]), boot[:6]
    assert any(x.startswith("boot: jump slot A v1.0.0+0") for x in boot[:6]), boot[:6]
    # The bridge noticed, began the session again (resuming where the device says) and completed it.
    assert any(x.startswith("fota: step restart ") for x in outcome.lines), outcome.lines
    assert (outcome.outcome, outcome.version, outcome.slot) == ("confirmed", "1.1.0", "B"), outcome.lines
    assert_device(lab, "B", "1.1.0", "confirmed")
    image = (releases["1.1.0-big"] / "slot-b.bin").read_bytes()
    with lab.locked() as b:
        assert b.flash_bytes(LAYOUT.region("slot_b").base, len(image)) == image


def boots(uart: list[str]) -> list[list[str]]:
    """The bootloader's lines, one list per boot (each starts with its "boot: start" line)."""
    out: list[list[str]] = []
    for line in uart:
        if line.startswith("boot: start "):
            out.append([])
        if out and line.startswith("boot: "):
            out[-1].append(line)
    return out


def test_power_cut_during_activation(lab: Lab, releases: dict[str, Path]) -> None:
    lab.release(releases["1.1.0"])
    lab.sync()
    board = lab.board
    # ACTIVATE appends a journal record: the power goes in the middle of the first flash operation
    # after the frame, i.e. while that record is being programmed.
    seen = on_request(lab, ACTIVATE, 1, lambda: board.cut_power_at_flash_op(board.flash_op_count + 1))
    outcome = lab.update()
    assert seen[0] >= 1
    assert [e.data for e in board.events if e.kind == "power"].count("off") == 1, "one power cut expected"
    # The first boot recorded Slot A as confirmed, so the journal is never empty afterwards.
    first, *later = boots(lab.uart_lines())
    assert "boot: first boot: journal seq 1 slot A confirmed" in first, first
    unsafe = [x for b in later for x in b if x.startswith("boot: journal empty") or "(no-record)" in x]
    assert not unsafe, later
    # The boot after the cut (power-on reset) starts a valid image with a sane journal: the old
    # image, confirmed (the torn record is ignored), or the new one on trial (the record was whole).
    cut = [b for b in later if b[0].startswith("boot: start ") and " reset por " in b[0]]
    assert len(cut) == 1, later
    journal = next(x for x in cut[0] if x.startswith("boot: journal "))
    jump = next(x for x in cut[0] if x.startswith("boot: jump "))
    old = journal.startswith("boot: journal seq 1 slot A confirmed ") and jump.startswith(
        "boot: jump slot A v1.0.0+0 (confirmed)")
    new = " slot B trial " in journal and jump.startswith("boot: jump slot B v1.1.0+0 (trial, ")
    assert old or new, cut[0]
    # The session died with the power, so the resent ACTIVATE got ERR_SEQ. The bridge asked INFO
    # and went on from there in the same cycle: BEGIN again after the torn record, straight to the
    # confirmation when the new image was already on trial.
    lost = "STM32 refused ACTIVATE: ERR_SEQ"
    went_on = f"fota: step restart {lost}" if old else f"fota: step recover boot: {lost}"
    assert went_on in outcome.lines, outcome.lines
    assert (outcome.outcome, outcome.version, outcome.slot) == ("confirmed", "1.1.0", "B"), outcome.lines
    # Journal at the end: B 1.1.0 confirmed by its self-test (checked by assert_device).
    assert_device(lab, "B", "1.1.0", "confirmed")
    assert len(lab.updates()) == 1                  # one update, one cycle


def test_server_restarted_mid_transfer_the_bridge_resumes(lab: Lab, releases: dict[str, Path]) -> None:
    relay = Relay(lab.cfg.server.port, scheme="https" if lab.tls else "http").start()
    try:
        lab.deploy_bridge(relay.url)
        lab.release(releases["1.1.0-max"])
        lab.sync()
        restarts = []

        def restart() -> None:
            lab.stop_server()
            relay.cut()                     # what was still in flight is lost with the old process
            lab.start_server()              # same port, same registry and firmware folder
            restarts.append(lab.server_url)

        on_request(lab, WRITE, 4, restart)
        outcome = lab.update()
    finally:
        relay.stop()
    assert restarts, "the server was never restarted"
    assert (outcome.outcome, outcome.version, outcome.slot) == ("confirmed", "1.1.0", "B"), outcome.lines
    resumed = [x for x in outcome.lines if x.startswith("fota: step download from ")]
    assert resumed, outcome.lines
    offset = int(resumed[0].rsplit(" ", 1)[1])
    assert 0 < offset < (releases["1.1.0-max"] / "slot-b.bin").stat().st_size   # not from the start
    assert_device(lab, "B", "1.1.0", "confirmed")
    image = (releases["1.1.0-max"] / "slot-b.bin").read_bytes()
    with lab.locked() as b:
        assert b.flash_bytes(LAYOUT.region("slot_b").base, len(image)) == image
