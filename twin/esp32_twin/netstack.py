"""The virtual ESP32's network: a Wi-Fi station that a test can take down, and real TCP sockets.

    net = NetStack(WifiConfig(ssid="lab", password="pw"))
    net.wifi_connect("lab", "pw"); net.status()        # STAT_GOT_IP
    sid = net.sock_new(); net.sock_connect(sid, "127.0.0.1", 8000, 5.0)
    net.sock_send(sid, b"GET / HTTP/1.0\\r\\n\\r\\n"); net.sock_recv(sid, 512, 5.0, interrupted)

Every blocking wait is bounded (a socket without timeout waits at most BLOCKING_LIMIT_S) and
polls `interrupted()` so that Ctrl-C on the serial port stops it, as on the board.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from dataclasses import dataclass

from esp32_twin.errors import DeviceOSError

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202

BLOCKING_LIMIT_S = 60.0
POLL_SLICE_S = 0.05
MAX_SOCKETS = 8
STATION_IP = ("192.168.4.2", "255.255.255.0", "192.168.4.1", "192.168.4.1")


@dataclass
class WifiConfig:
    """The access point the virtual ESP32 can see. `up=False`: no network at all (Wi-Fi down);
    ssid/password None: any network name / password is accepted."""

    up: bool = True
    ssid: str | None = None
    password: str | None = None


class NetStack:
    def __init__(self, wifi: WifiConfig | None = None) -> None:
        self.wifi = wifi or WifiConfig()
        self.active = False
        self.ssid: str | None = None
        self._status = STAT_IDLE
        self._socks: dict[int, socket.socket] = {}
        self._next = 1

    # -- Wi-Fi -----------------------------------------------------------------------------

    def set_active(self, on: bool) -> None:
        self.active = on
        if not on:
            self.disconnect()

    def connect(self, ssid: str | None, password: str | None) -> None:
        if not self.active:
            raise DeviceOSError("EPERM", "Wifi Not Started")  # the ESP32 port's complaint
        self.ssid = ssid
        if not self.wifi.up or (self.wifi.ssid is not None and ssid != self.wifi.ssid):
            self._status = STAT_NO_AP_FOUND
        elif self.wifi.password is not None and password != self.wifi.password:
            self._status = STAT_WRONG_PASSWORD
        else:
            self._status = STAT_GOT_IP

    def disconnect(self) -> None:
        self._status = STAT_IDLE
        self.close_all()

    def status(self) -> int:
        if self._status == STAT_GOT_IP and not self.wifi.up:
            self._status = STAT_NO_AP_FOUND  # the access point went away
        return self._status

    def connected(self) -> bool:
        return self.active and self.status() == STAT_GOT_IP

    def ifconfig(self) -> list[str]:
        return list(STATION_IP) if self.connected() else ["0.0.0.0"] * 4

    # -- sockets ---------------------------------------------------------------------------

    def _require_network(self) -> None:
        if not self.connected():
            raise DeviceOSError("EHOSTUNREACH", "Wi-Fi is not connected")

    def getaddrinfo(self, host: str) -> str:
        self._require_network()
        try:
            return socket.gethostbyname(host)
        except OSError as e:
            raise DeviceOSError("EHOSTUNREACH", f"cannot resolve {host}: {e}") from None

    def sock_new(self) -> int:
        if len(self._socks) >= MAX_SOCKETS:
            raise DeviceOSError("ENOBUFS", "too many sockets")
        sid = self._next
        self._next += 1
        self._socks[sid] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        return sid

    def _sock(self, sid: int) -> socket.socket:
        try:
            return self._socks[sid]
        except KeyError:
            raise DeviceOSError("EBADF", f"socket {sid}") from None

    @staticmethod
    def _limit(timeout: float | None) -> float:
        return BLOCKING_LIMIT_S if timeout is None else max(0.0, min(float(timeout), BLOCKING_LIMIT_S))

    def sock_connect(self, sid: int, host: str, port: int, timeout: float | None) -> None:
        s = self._sock(sid)
        self._require_network()
        s.settimeout(self._limit(timeout))
        try:
            s.connect((host, int(port)))
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None

    def _wait(self, s: socket.socket, writable: bool, timeout: float | None,
              interrupted: Callable[[], bool]) -> None:
        remaining = self._limit(timeout)
        while True:
            step = min(POLL_SLICE_S, remaining)
            r, w, _ = select.select([] if writable else [s], [s] if writable else [], [], step)
            if r or w:
                return
            if timeout is not None and timeout <= 0:
                raise DeviceOSError("EAGAIN", "would block")  # a non-blocking socket
            if interrupted():
                raise DeviceOSError("EINTR", "interrupted")
            remaining -= step
            if remaining <= 0:
                raise DeviceOSError("ETIMEDOUT", "socket timeout")

    def sock_send(self, sid: int, data: bytes, timeout: float | None,
                  interrupted: Callable[[], bool]) -> int:
        s = self._sock(sid)
        self._require_network()
        self._wait(s, True, timeout, interrupted)
        try:
            return s.send(data)
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None

    def sock_recv(self, sid: int, n: int, timeout: float | None,
                  interrupted: Callable[[], bool]) -> bytes:
        s = self._sock(sid)
        self._require_network()
        if n <= 0:
            return b""
        self._wait(s, False, timeout, interrupted)
        try:
            return s.recv(n)
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None

    # -- for the TLS layer (tlshost.py), which replaces a socket by its TLS session -------------

    def get(self, sid: int) -> socket.socket:
        return self._sock(sid)

    def put(self, sid: int, sock: socket.socket) -> None:
        self._socks[sid] = sock

    def require_network(self) -> None:
        self._require_network()

    def wait(self, s: socket.socket, writable: bool, timeout: float | None,
             interrupted: Callable[[], bool]) -> None:
        self._wait(s, writable, timeout, interrupted)

    def sock_close(self, sid: int) -> None:
        s = self._socks.pop(sid, None)
        if s is not None:
            s.close()

    def close_all(self) -> None:
        for sid in list(self._socks):
            self.sock_close(sid)
