"""Helpers of the link tests: the STM32 twin with the real binaries, driven by the reference master.

The twin runs the unmodified bootloader.bin / slot-*.bin; the master is fota_lab.master (the
bridge's own fotalink.py under CPython). Everything runs in the twin's virtual time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fota_formats.image import HEADER, image_counter, unpack_header, validate_image
from fota_formats.spec import IMAGE, LAYOUT, PROTOCOL
from fota_lab.master import BridgeError, LinkError, Master, TwinPort, fotalink
from stm32_twin.board import Stm32Twin

C = PROTOCOL.constants
ST = PROTOCOL.tables["status"]
CMD = PROTOCOL.tables["commands"]
SESSION = PROTOCOL.tables["session"]
IC = IMAGE.constants
SLOT_A, SLOT_B = IC["SLOT_A"], IC["SLOT_B"]
FLASH_BASE = LAYOUT.flash_base
BOOT_MS = C["BOOT_TIMEOUT_MS"]
SLOT_COLOUR = {SLOT_A: "green", SLOT_B: "orange"}


def region_bytes(twin: Stm32Twin, name: str) -> bytes:
    r = LAYOUT.region(name)
    return twin.flash_bytes(r.base, r.size)


def new_twin(flash: bytes | None = None, build: Path | None = None) -> Stm32Twin:
    """A powered-off twin holding ``flash`` (a full 1 MB image), or the bootloader and slot A of
    ``build`` with slot B erased."""
    twin = Stm32Twin(strict=True)
    if flash is not None:
        twin.restore_flash(flash)
    if build is not None:
        twin.load_build(build, slot_b=False)
    return twin


def boot(twin: Stm32Twin, *, power: bool = True) -> None:
    """Power on (or let a reset run) until the application's link raised READY and the log lines
    so far reached USART2 (they drain from a RAM ring after the jump, so the bootloader's and the
    application's first lines come out a few tens of milliseconds after READY)."""
    if power:
        twin.power_on()
    if not twin.wait_pin("READY", 1, BOOT_MS):
        raise AssertionError("the application did not raise READY within BOOT_TIMEOUT_MS:\n"
                             + "\n".join(twin.uart_lines[-15:]))
    drain_log(twin)


def drain_log(twin: Stm32Twin, timeout_ms: int = 500) -> None:
    """Run until USART2 is idle (TC set: the ring is empty and the last byte has left)."""
    for _ in range(timeout_ms):
        if twin.usart2.sr & twin.usart2.SR_TC:
            return
        twin.run(ms=1)
    raise AssertionError(f"USART2 still sending after {timeout_ms} ms:\n" + "\n".join(twin.uart_lines[-15:]))


def master(twin: Stm32Twin, port: Any = None) -> Master:
    return Master(port if port is not None else TwinPort(twin))


def header_block(image: bytes) -> bytes:
    """The image header: what BEGIN carries."""
    return image[:HEADER.size]


def raw_call(link: Any, cmd: int, payload: bytes = b"", timeout_ms: int = C["READY_TIMEOUT_MS"]) -> int:
    """Send one request with an arbitrary payload (<= 148 bytes) and return the status."""
    link._req[8:8 + len(payload)] = payload
    return int(link.call(cmd, len(payload), timeout_ms, PROTOCOL.name_of("commands", cmd)))


def status_of(fn: Callable[[], Any]) -> int:
    """The STM32's status code of a refused operation (the operation must fail)."""
    try:
        fn()
    except BridgeError as e:
        assert e.status is not None, e.reason
        return int(e.status)
    raise AssertionError("the operation was expected to be refused")


def begin_payload(image: bytes, target: int, flags: int = 0, size: int | None = None,
                  counter: int | None = None) -> bytes:
    """BEGIN's payload for ``image``; ``counter`` (default: the image's SEC_CNT) is the announced
    security counter."""
    import hashlib

    h = unpack_header(image)
    return PROTOCOL.structs["begin_req"].pack(
        target_slot=target, flags=flags, ver_patch=h["ver_revision"], ver_major=h["ver_major"],
        ver_minor=h["ver_minor"], build=h["ver_build"], image_size=len(image) if size is None else size,
        sha256=hashlib.sha256(image).digest(), header=header_block(image),
        security_counter=(image_counter(image) or 0) if counter is None else counter)


def write_payload(offset: int, data: bytes) -> bytes:
    return struct.pack("<I", offset) + data


def led_toggles(twin: Stm32Twin, since: int) -> dict[str, int]:
    """LED changes per colour in the events recorded after index ``since``."""
    out: dict[str, int] = {}
    for ev in twin.events[since:]:
        if ev.kind == "led":
            out[ev.data["led"]] = out.get(ev.data["led"], 0) + 1
    return out


__all__ = ["CMD", "SESSION", "SLOT_A", "SLOT_B", "ST", "BridgeError", "fotalink"]


def padded_image(image: bytes, file_size: int) -> bytes:
    """The image grown to at most ``file_size`` bytes (TLVs included; less by the 8-byte alignment of
    its body) with pseudo-random filler after its code, re-signed with the lab key (as
    bench/bench_link.py does)."""
    from fota_lab.images import restamp

    return restamp(image, validate_image(image).version, size=file_size)


@dataclass(frozen=True)
class Builds:
    v100: Path   # bootloader, slot-a, slot-b at 1.0.0
    v110: Path   # 1.1.0, plus slot-?-hang and slot-?-noconfirm
    v120: Path   # 1.2.0

    def image(self, build_dir: Path, name: str) -> bytes:
        return (build_dir / f"{name}.bin").read_bytes()


CONFIRM_WAIT_MS = 15_000   # the self-test confirms after about 3 s


def try_info(twin: Stm32Twin) -> dict | None:
    """INFO, or None when the device does not answer (booting, powered off, link dead)."""
    try:
        return master(twin).info()
    except LinkError:
        return None


def wait_confirmed_b(twin: Stm32Twin) -> dict:
    """Run until the device runs slot B confirmed (v1.1.0 in these tests); INFO at the end."""
    deadline = twin.now_ms + CONFIRM_WAIT_MS
    info = None
    while twin.now_ms < deadline:
        info = try_info(twin)
        if info and info["meta_state"] == IC["META_STATE_CONFIRMED"] and info["running_slot"] == SLOT_B:
            return info
        twin.run(ms=250)
    raise AssertionError(f"v1.1.0 not confirmed in slot B: {info}\n" + "\n".join(twin.uart_lines[-12:]))
