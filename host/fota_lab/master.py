"""The reference master of the SPI link on the host, for tests, benchmarks and USB-SPI adapters.

    >>> from fota_lab.master import TwinPort, Master           # doctest: +SKIP
    >>> m = Master(TwinPort(board))                              # doctest: +SKIP
    >>> r = m.update(open("build/slot-b.bin", "rb").read())      # doctest: +SKIP
    >>> r.outcome, r.info_after["running_slot"], r.phases_ms["write"]   # doctest: +SKIP
    ('confirmed', 1, 1093.2)

The protocol is not written twice: this module drives the bridge's own `esp32_mpy/fotalink.py`
(MicroPython code that also runs under CPython; loaded by ``fota_lab.bridge_modules``, on first
use, without taking the top-level module names) through a *port* object. `TwinPort`
adapts the STM32 twin's SPI master API; any object with `transfer(tx, rx)`, `ready()`,
`ticks_ms()`, `sleep_ms(n)` and `reset_target()` will do (a USB-SPI adapter, a test fake).
Errors are :class:`LinkError` ("Failed to <operation>: <reason>"), with the STM32's status code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fota_formats.errors import FotaError
from fota_formats.image import HEADER, SLOTS, header_version, image_counter, image_slot
from fota_formats.spec import IMAGE, PROTOCOL
from stm32_fota.project import current

from .bridge_modules import BridgeModules, for_folder

HEADER_SIZE = HEADER.size   # BEGIN carries the image header, file bytes [0, 32)
SPI_HZ = 10_500_000          # the STM32's SPI2 slave limit, fPCLK1 / 4 (docs/protocol.md, Wires)
_C = IMAGE.constants
_ACTIVATED = PROTOCOL.tables["session"]["ACTIVATED"]
_RETRIES = PROTOCOL.constants["RETRIES"]
# After a RESET the device answers INFO within BOOT_TIMEOUT_MS (docs/protocol.md). A new image that
# hangs answers nothing, but each of its META_TRIAL_ATTEMPTS trial boots ends in a watchdog reset
# (IWDG, 4 s < BOOT_TIMEOUT_MS), and then the bootloader goes back to the previous image, which
# answers: so some image answers within one BOOT_TIMEOUT_MS per trial boot plus one.
ANSWER_TIMEOUT_MS = PROTOCOL.constants["BOOT_TIMEOUT_MS"] * (_C["META_TRIAL_ATTEMPTS"] + 1)
_POLL_MS = 100
_REVERTED = {_C["RESULT_REVERTED_NO_CONFIRM"]: "REVERTED_NO_CONFIRM",
             _C["RESULT_REVERTED_INVALID"]: "REVERTED_INVALID",
             _C["RESULT_REVERTED_WATCHDOG"]: "REVERTED_WATCHDOG"}


def bridge() -> BridgeModules:
    """The bridge code of the checkout (``stm32_fota.project.current().bridge_dir``), loaded once."""
    return for_folder(current().bridge_dir)


def __getattr__(name: str) -> Any:
    """``fotalink`` and ``BridgeError``: the checkout's bridge, loaded on first use, never at import."""
    if name == "fotalink":
        return bridge().fotalink
    if name == "BridgeError":
        return bridge().BridgeError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LinkError(FotaError):
    """A link operation failed; ``status`` is the STM32's status code when it gave one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def status_name(self) -> str | None:
        return None if self.status is None else PROTOCOL.name_of("status", self.status)


class TwinPort:
    """The bridge's port interface over the STM32 twin (``stm32_twin.board.Stm32Twin``), in its
    virtual time: ``board.now_ms`` is the clock and ``board.run(ms=n)`` lets the twin run."""

    def __init__(self, board: Any, hz: int = SPI_HZ) -> None:
        self.board = board
        self.hz = hz

    def transfer(self, tx: memoryview, rx: memoryview) -> None:
        rx[:] = self.board.spi_transfer(bytes(tx), self.hz)

    def ready(self) -> bool:
        return bool(self.board.pin("READY"))

    def wait_ready(self, timeout_ms: int) -> bool:
        return bool(self.board.wait_pin("READY", 1, timeout_ms))

    def ticks_ms(self) -> int:
        return int(self.board.now_ms)

    def now_ms(self) -> float:
        return float(self.board.now_ms)

    def sleep_ms(self, n: int) -> None:
        self.board.run(ms=n)

    def reset_target(self) -> None:
        self.board.reset_pin()


class BytesSource:
    """An image in memory as a source for ``Link.write_image``; counts the bytes it handed out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read = 0

    def readinto(self, offset: int, mv: memoryview) -> None:
        mv[:] = self.data[offset:offset + len(mv)]
        self.read += len(mv)


@dataclass
class UpdateResult:
    """What one update did, in the port's (virtual) time."""

    outcome: str                      # "confirmed", "reverted", "activated" (no reset asked)
    target_slot: int
    version: tuple[int, int, int, int]
    size: int
    resumed_from: int
    info_before: dict[str, Any]
    info_after: dict[str, Any] | None
    phases_ms: dict[str, float] = field(default_factory=dict)
    wire_bytes: int = 0
    transactions: int = 0
    retries: int = 0
    reason: str = ""

    @property
    def begin_to_activate_ms(self) -> float:
        return sum(self.phases_ms.get(k, 0.0) for k in ("begin", "write", "verify", "activate"))

    @property
    def wire_per_payload(self) -> float:
        """SPI bytes clocked per image byte, BEGIN to ACTIVATE."""
        return self.wire_bytes / self.size if self.size else 0.0


def _info_version(info: dict[str, Any]) -> tuple[int, int, int]:
    return info["run_major"], info["run_minor"], info["run_patch"]


class Master:
    """The master side of the link: the bridge's Link over a port, with host conveniences.
    ``bridge_code``: the bridge to run (default: the checkout's, ``bridge()``)."""

    def __init__(self, port: Any, bridge_code: BridgeModules | None = None) -> None:
        self.port = port
        self.bridge_code = bridge_code or bridge()
        self.link = self.bridge_code.fotalink.Link(port)

    def _now(self) -> float:
        now = getattr(self.port, "now_ms", None)
        return float(now()) if now else float(self.port.ticks_ms())

    def _do(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.bridge_code.BridgeError as e:
            raise LinkError(f"Failed to {what}: {e.reason}", e.status) from None

    def info(self) -> dict[str, Any]:
        return self._do("read INFO", self.link.info)

    def update(self, image: bytes, *, target: int | None = None, downgrade: bool = False,
               reset: bool = True, confirm_timeout_ms: float = 30_000, stop_at: int | None = None,
               before_reset: Callable[[], None] | None = None) -> UpdateResult:
        """INFO, BEGIN, WRITE..., VERIFY, ACTIVATE, then (``reset``) RESET and INFO polls until the
        new image confirmed itself or the bootloader reverted. After the reset INFO is retried
        until the device answers, for at most ``ANSWER_TIMEOUT_MS`` (a new image that hangs
        answers nothing until the bootloader has gone back); from the first answer on, the
        confirmation is awaited for at most ``confirm_timeout_ms``. ``target`` defaults to the
        slot the image is linked for. ``stop_at``: stop streaming at that offset and return (as a
        bridge that lost power would), outcome "stopped". ``before_reset``: called after ACTIVATE,
        before the RESET (a fault that only the new image meets, in the demo's fleet)."""
        link = self.link
        version = header_version(image)
        slot = image_slot(image) if target is None else target
        if slot is None:
            raise LinkError("Failed to update: the image names no slot (SLOT TLV); give the target")
        t = self._now()
        before = self.info()
        phases: dict[str, float] = {"info": self._now() - t}
        wire0, tr0, re0 = link.wire_bytes, link.transactions, link.retries

        def phase(name: str, what: str, fn: Any, *args: Any) -> Any:
            start = self._now()
            out = self._do(what, fn, *args)
            phases[name] = self._now() - start
            return out

        block = image[:HEADER_SIZE]
        flags = PROTOCOL.constants["BEGIN_FLAG_DOWNGRADE"] if downgrade else 0
        counter = image_counter(image)
        nxt = phase("begin", "BEGIN", link.begin, slot, flags, version, len(image),
                    hashlib.sha256(image).digest(), block, 0 if counter is None else counter)
        end = len(image) if stop_at is None else min(stop_at, len(image))
        src = BytesSource(image)
        phase("write", f"write the image from offset {nxt}", link.write_image, src, nxt, end)
        result = UpdateResult("stopped", slot, version, len(image), nxt, before, None, phases)
        if end < len(image):
            return self._finish(result, wire0, tr0, re0)
        phase("verify", "VERIFY", link.verify)
        phase("activate", "ACTIVATE", link.activate)
        result.outcome = "activated"
        self._finish(result, wire0, tr0, re0)
        if not reset:
            return result
        if before_reset is not None:
            before_reset()
        start = self._now()
        self._do("RESET", link.reset)
        result.info_after = self._first_answer(ANSWER_TIMEOUT_MS)
        phases["boot"] = self._now() - start
        self._await(result, confirm_timeout_ms)
        phases["confirm"] = self._now() - start - phases["boot"]
        return result

    def _finish(self, r: UpdateResult, wire0: int, tr0: int, re0: int) -> UpdateResult:
        r.wire_bytes = self.link.wire_bytes - wire0
        r.transactions = self.link.transactions - tr0
        r.retries = self.link.retries - re0
        return r

    def _first_answer(self, timeout_ms: float) -> dict[str, Any]:
        """INFO, retried until the device answers (it may be rebooting between trial attempts)."""
        start = self._now()
        while True:
            try:
                return self.link.info()
            except self.bridge_code.BridgeError as e:
                why = e.reason
            if self._now() - start >= timeout_ms:
                raise LinkError(f"Failed to read INFO after the reset: no answer within "
                                f"{timeout_ms / 1000:.0f} s ({why})")
            self.port.sleep_ms(_POLL_MS)

    def _await(self, r: UpdateResult, timeout_ms: float) -> None:
        start = self._now()
        confirmed = _C["META_STATE_CONFIRMED"]
        resets = 0
        while True:
            try:
                info = self.link.info()
            except self.bridge_code.BridgeError as e:      # rebooting between trial attempts
                info, why = None, e.reason
            if info is not None and info["session_state"] == _ACTIVATED and resets < _RETRIES:
                resets += 1                   # the RESET frame was lost: the session is still open
                self._do("RESET", self.link.reset)
                continue
            if info is not None:
                r.info_after = info
                run = info["running_slot"]
                why = f"slot {SLOTS.get(run, '?')} version {'.'.join(map(str, _info_version(info)))}"
                if run == r.target_slot and _info_version(info) == r.version[:3] \
                        and info["meta_state"] == confirmed:
                    r.outcome = "confirmed"
                    return
                if run != r.target_slot and info["meta_state"] == confirmed \
                        and info["last_result"] in _REVERTED:
                    r.outcome, r.reason = "reverted", _REVERTED[info["last_result"]]
                    return
            if self._now() - start >= timeout_ms:
                raise LinkError(f"Failed to see the new image confirmed within {timeout_ms / 1000:.0f} s: "
                                f"{why}")
            self.port.sleep_ms(_POLL_MS)
