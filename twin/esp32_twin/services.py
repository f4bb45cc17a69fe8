"""The host side of the virtual ESP32's hardware: clock, GPIO, SPI, Wi-Fi, sockets, filesystem.

    services = Services(peer, HostFs(dir), NetStack(WifiConfig()))
    reply = services.handle("pin_read", [27], b"", interrupted)   # -> Reply(value=1)

`handle` serves one call of the MicroPython stand-ins (twin/esp32_twin/mpy/). Time: `now_ms` is
the ESP32's clock (time.ticks_ms) and the peer's. It advances by the wall-clock time the ESP32
spent computing between two calls (capped), by every sleep, by the wall-clock time a network call
waited (a connect to a silent server takes its timeout on the ESP32's clock too), and while READY
is polled low (the peer runs until READY rises or READY_POLL_MS pass). While the REPL waits for
input, `idle` keeps the peer running in step with wall-clock time, so the twin's LEDs blink in a
demo.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esp32_twin.errors import DeviceOSError
from esp32_twin.hostfs import HostFs
from esp32_twin.netstack import NetStack
from esp32_twin.peer import GPIO_CS, GPIO_NRST, GPIO_READY, Esp32Peer
from esp32_twin.tlshost import TlsHost

MODE_IN = 1
MODE_OUT = 3
MODE_OPEN_DRAIN = 7
PULL_UP = 2
PULL_DOWN = 1

READY_POLL_MS = 2.0     # virtual time one READY read may let pass while READY is low
CATCH_UP_MAX_MS = 50.0  # at most this much ESP32 computing time is handed to the peer per call
SLEEP_SLICE_MS = 20.0   # a sleep runs the peer in slices, checking for Ctrl-C in between
TICKS_MASK = (1 << 30) - 1

Interrupted = Callable[[], bool]
PEER_OPS = frozenset({"pin_mode", "pin_write", "pin_read", "spi", "boot"})
# Calls that wait on the network: the ESP32's clock (and the peer) runs for as long as they wait,
# as it does on the board (a socket waiting 10 s is 10 s of time.ticks_ms()).
WAIT_OPS = frozenset({"getaddrinfo", "sock_connect", "sock_send", "sock_recv", "tls_wrap", "tls_read",
                      "tls_write"})


@dataclass
class Reply:
    value: Any = None
    binary: bytes = b""
    reboot: str | None = None


@dataclass
class PinState:
    mode: int = -1
    pull: int = -1
    level: int = 0  # the output register


@dataclass
class Services:
    peer: Esp32Peer | None
    fs: HostFs
    net: NetStack
    realtime: bool = True
    unique_id: bytes = bytes.fromhex("24a16007f1e2")
    now_ms: float = 0.0
    boots: int = 0
    reset_cause: int = 1  # machine.PWRON_RESET
    pins: dict[int, PinState] = field(default_factory=dict)
    # The board: an external pull-up on NRST (the wiring table's 10 kOhm). Without it, GPIO 4's
    # reset pull-down (ESP32 datasheet, IO_MUX: GPIO4 "IE=1, WPD"), when nothing clears it, holds
    # NRST at ~1.6 V against the STM32's 40 kOhm pull-up: modelled as held low (nrst_undefined).
    nrst_pullup: bool = True
    nrst_undefined: bool = False
    # machine.WDT: its timeout and deadline on the ESP32's clock (None: not started)
    wdt_timeout_ms: float | None = None
    wdt_deadline_ms: float = 0.0
    wdt_fired: bool = False
    # Held while the peer is touched (a short while: one slice of a sleep, one transfer), so that
    # another thread can inspect the twin between two of them.
    lock: threading.RLock = field(default_factory=threading.RLock)
    _last_wall: float = field(default_factory=time.monotonic)
    tls: TlsHost = field(init=False)

    def __post_init__(self) -> None:
        self.tls = TlsHost(self.net)

    # -- time ------------------------------------------------------------------------------

    def _advance(self, ms: float, until: tuple[int, int] | None = None) -> float:
        if ms <= 0:
            return 0.0
        with self.lock:
            passed = self.peer.advance(ms, until) if self.peer is not None else ms
            self.now_ms += passed
        return passed

    def catch_up(self) -> None:
        """Hand the wall-clock time since the last call to the peer (the ESP32 was computing)."""
        now = time.monotonic()
        delta = (now - self._last_wall) * 1000.0
        if delta >= 1.0:
            self._advance(min(delta, CATCH_UP_MAX_MS))
            self._last_wall = now

    def settle(self) -> None:
        """End of a call: its own duration is not computing time of the ESP32."""
        self._last_wall = time.monotonic()

    def idle(self) -> None:
        """The REPL waits for input: the peer free-runs in step with wall-clock time."""
        self.catch_up()

    def sleep(self, ms: float, interrupted: Interrupted) -> None:
        end = time.monotonic() + ms / 1000.0
        left = float(ms)
        while left > 0:
            step = min(SLEEP_SLICE_MS, left)
            self._advance(step)
            left -= step
            if interrupted():
                return
            if self.realtime:
                # Never run ahead of the wall clock: a sleep lasts as long as on the board.
                ahead = end - left / 1000.0 - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    # -- GPIO ------------------------------------------------------------------------------

    def _pin(self, gpio: int) -> PinState:
        # Pulls after a reset as the datasheet's IO_MUX table lists them (GPIO 4: weak pull-down).
        return self.pins.setdefault(gpio, PinState(pull=PULL_DOWN if gpio == GPIO_NRST else -1))

    def _nrst_half_way(self, pin: PinState) -> bool:
        released = pin.mode in (-1, MODE_IN) or (pin.mode == MODE_OPEN_DRAIN and pin.level == 1)
        return released and pin.pull == PULL_DOWN and not self.nrst_pullup

    def _drive(self, gpio: int) -> None:
        pin = self._pin(gpio)
        if self.peer is None:
            return
        if gpio == GPIO_NRST:
            self.nrst_undefined = self._nrst_half_way(pin)
            if self.nrst_undefined:
                self.peer.pin_write(gpio, 0)   # ~1.6 V: below what the STM32 reliably sees as high
                return
        if pin.mode == MODE_OUT:
            self.peer.pin_write(gpio, pin.level)
        elif pin.mode == MODE_OPEN_DRAIN:
            self.peer.pin_write(gpio, 0 if pin.level == 0 else None)
        elif pin.mode == MODE_IN:
            self.peer.pin_write(gpio, None)

    def pin_mode(self, gpio: int, mode: int, pull: int) -> None:
        pin = self._pin(gpio)
        if mode != -1:
            pin.mode = mode
        if pull != -1:
            pin.pull = pull
        self._drive(gpio)

    def pin_write(self, gpio: int, level: int) -> None:
        pin = self._pin(gpio)
        pin.level = 1 if level else 0
        if pin.mode in (MODE_OUT, MODE_OPEN_DRAIN):
            self._drive(gpio)

    def pin_read(self, gpio: int) -> int:
        pin = self._pin(gpio)
        if pin.mode == MODE_OUT:
            return pin.level
        if pin.mode == MODE_OPEN_DRAIN and pin.level == 0:
            return 0
        level = self.peer.pin_read(gpio) if self.peer is not None else None
        if level is None and gpio == GPIO_READY and self.peer is not None:
            level = 0
        if level == 0 and gpio == GPIO_READY and self.peer is not None:
            # The bridge is waiting for the STM32: let the STM32 run towards READY.
            self._advance(READY_POLL_MS, (GPIO_READY, 1))
            level = self.peer.pin_read(gpio) or 0
        if level is None:
            if pin.mode == MODE_OPEN_DRAIN or pin.pull == PULL_UP or gpio == GPIO_NRST:
                return 1  # released line, pulled up (the STM32 pulls NRST up internally)
            return 0
        return 1 if level else 0

    def spi(self, baudrate: int, tx: bytes) -> bytes:
        if self.peer is None:
            return bytes(len(tx))  # MISO floats low with nothing attached
        cs = self._pin(GPIO_CS)
        if cs.mode == MODE_OUT and cs.level == 1:
            return b"\xff" * len(tx)  # CS high: the STM32 does not drive MISO
        rx = self.peer.spi_transfer(bytes(tx), int(baudrate))
        if len(rx) != len(tx):
            raise DeviceOSError("EIO", f"peer returned {len(rx)} bytes for {len(tx)}")
        return rx

    # -- resets ----------------------------------------------------------------------------

    def on_boot(self, kind: str) -> None:
        """The runtime (re)starts: open files and sockets are gone; a hard reset drops Wi-Fi."""
        self.boots += 1
        self.fs.close_all()
        self.net.close_all()
        self.tls.reset()
        if kind != "soft":
            self.net.set_active(False)
            self.reset_cause = 3 if self.wdt_fired else {"power": 1, "hard": 5}.get(kind, 1)
            self.wdt_fired = False
            self.pins.clear()
            self.wdt_timeout_ms = None      # a hardware reset stops the watchdog; a soft one does not
            if self.peer is not None:
                self.peer.pin_write(GPIO_CS, None)
                self.peer.pin_write(GPIO_NRST, None)
                self._drive(GPIO_NRST)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, op: str, args: list[Any], tx: bytes, interrupted: Interrupted) -> Reply:
        """Serve one call; DeviceOSError passes to the caller, which sends it as an errno."""
        self.catch_up()
        start = time.monotonic()
        try:
            if op in PEER_OPS:
                with self.lock:
                    reply = self._dispatch(op, args, tx, interrupted)
            else:
                reply = self._dispatch(op, args, tx, interrupted)
        finally:
            if op in WAIT_OPS:
                self._advance((time.monotonic() - start) * 1000.0)
            self.settle()
        if self.wdt_expired():
            reply.reboot = "hard"
        return reply

    def wdt_expired(self) -> bool:
        """Has the started watchdog run out? Then the board resets (reset_cause WDT_RESET)."""
        if self.wdt_timeout_ms is None or self.now_ms < self.wdt_deadline_ms:
            return False
        self.wdt_timeout_ms = None
        self.wdt_fired = True
        return True

    def _dispatch(self, op: str, a: list[Any], tx: bytes, interrupted: Interrupted) -> Reply:
        net, fs = self.net, self.fs
        if op == "ticks":
            return Reply(int(self.now_ms) & TICKS_MASK)
        if op == "sleep":
            self.sleep(float(a[0]), interrupted)
            return Reply()
        if op == "pin_mode":
            self.pin_mode(int(a[0]), int(a[1]), int(a[2]))
            return Reply()
        if op == "pin_write":
            self.pin_write(int(a[0]), int(a[1]))
            return Reply()
        if op == "pin_read":
            return Reply(self.pin_read(int(a[0])))
        if op == "spi":
            rx = self.spi(int(a[0]), tx)
            return Reply(len(rx), rx)
        if op == "reset":
            return Reply(reboot="hard")
        if op == "wdt_init":
            self.wdt_timeout_ms = float(a[0])
            self.wdt_deadline_ms = self.now_ms + self.wdt_timeout_ms
            return Reply()
        if op == "wdt_feed":
            if self.wdt_timeout_ms is not None:
                self.wdt_deadline_ms = self.now_ms + self.wdt_timeout_ms
            return Reply()
        if op == "unique_id":
            return Reply(self.unique_id.hex())
        if op == "reset_cause":
            return Reply(self.reset_cause)
        if op == "boot":
            self.on_boot(str(a[0]) if a else "power")
            return Reply()
        if op == "wifi_active":
            if a[0] is None:
                return Reply(net.active)
            net.set_active(bool(a[0]))
            return Reply()
        if op == "wifi_connect":
            net.connect(a[0], a[1])
            return Reply()
        if op == "wifi_disconnect":
            net.disconnect()
            return Reply()
        if op == "wifi_status":
            return Reply(net.status())
        if op == "wifi_ifconfig":
            return Reply(_json(net.ifconfig()))
        if op == "wifi_ssid":
            return Reply(net.ssid)
        if op == "getaddrinfo":
            return Reply(net.getaddrinfo(str(a[0])))
        if op == "sock_new":
            return Reply(net.sock_new())
        if op == "sock_connect":
            net.sock_connect(int(a[0]), str(a[1]), int(a[2]), a[3])
            return Reply()
        if op == "sock_send":
            return Reply(net.sock_send(int(a[0]), tx, a[1], interrupted))
        if op == "sock_recv":
            data = net.sock_recv(int(a[0]), int(a[1]), a[2], interrupted)
            return Reply(len(data), data)
        if op == "sock_close":
            net.sock_close(int(a[0]))
            return Reply()
        if op == "tls_ca":
            try:
                return Reply(self.tls.load_ca(tx))
            except ValueError as e:
                return Reply("\0V" + str(e))
        if op == "tls_wrap":
            return Reply(self.tls.wrap(int(a[0]), a[1], int(a[2] or 0), a[3], interrupted))
        if op == "tls_read":
            got = self.tls.read(int(a[0]), int(a[1]), a[2], interrupted)
            return Reply(got) if isinstance(got, str) else Reply(len(got), got)
        if op == "tls_write":
            return Reply(self.tls.write(int(a[0]), tx, a[1], interrupted))
        if op == "fs_stat":
            return Reply(_json(fs.stat(str(a[0]))))
        if op == "fs_listdir":
            return Reply(_json(fs.listdir(str(a[0]))))
        if op == "fs_mkdir":
            fs.mkdir(str(a[0]))
            return Reply()
        if op == "fs_rmdir":
            fs.rmdir(str(a[0]))
            return Reply()
        if op == "fs_remove":
            fs.remove(str(a[0]))
            return Reply()
        if op == "fs_rename":
            fs.rename(str(a[0]), str(a[1]))
            return Reply()
        if op == "fs_statvfs":
            return Reply(_json(fs.statvfs()))
        if op == "fs_open":
            return Reply(fs.open(str(a[0]), str(a[1])))
        if op == "fs_read":
            data = fs.read(int(a[0]), int(a[1]))
            return Reply(len(data), data)
        if op == "fs_readline":
            data = fs.readline(int(a[0]), int(a[1]))
            return Reply(len(data), data)
        if op == "fs_write":
            return Reply(fs.write(int(a[0]), tx))
        if op == "fs_seek":
            return Reply(fs.seek(int(a[0]), int(a[1]), int(a[2])))
        if op == "fs_close":
            fs.close(int(a[0]))
            return Reply()
        raise DeviceOSError("ENODEV", f"unknown operation {op!r}")


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
