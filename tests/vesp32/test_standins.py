"""The stand-ins inside the real MicroPython runtime: pins and SPI reach the peer, Wi-Fi can be
down, sockets are real TCP, time and gc behave like an ESP32's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from esp32_twin import FakePeer, VirtualEsp32
from esp32_twin.peer import GPIO_CS, GPIO_NRST
from fota_testkit.mpremote import Mp


def test_spi_bytes_cross_to_the_peer_and_back(mp: Mp, fake_peer: FakePeer) -> None:
    fake_peer.respond = lambda tx: bytes(b ^ 0xFF for b in tx)
    code = ("from machine import SPI, Pin\n"
            "cs = Pin(5, Pin.OUT, value=1)\n"
            "spi = SPI(2, baudrate=8000000, polarity=0, phase=0, sck=Pin(18), mosi=Pin(23), miso=Pin(19))\n"
            "tx = bytes(range(200)); rx = bytearray(200)\n"
            "cs(0); spi.write_readinto(memoryview(tx)[10:], memoryview(rx)[10:]); cs(1)\n"
            "print(rx[10] == 0xF5, rx[199] == 0x38, rx[:10] == bytearray(10))\n")
    assert mp("exec", code).stdout == "True True True\n"
    spi = [entry for entry in fake_peer.log if entry[0] == "spi"]
    assert spi == [("spi", bytes(range(10, 200)), 8000000)]
    cs_levels = [e[2] for e in fake_peer.log if e[0] == "pin" and e[1] == GPIO_CS]
    assert cs_levels[-2:] == [0, 1]


def test_spi_with_cs_high_reads_idle_bus(mp: Mp, fake_peer: FakePeer) -> None:
    code = ("from machine import SPI, Pin\ncs = Pin(5, Pin.OUT, value=1)\nspi = SPI(2)\n"
            "print(spi.read(3, 0x00))\n")
    assert mp("exec", code).stdout == "b'\\xff\\xff\\xff'\n"
    assert not [e for e in fake_peer.log if e[0] == "spi"]     # nothing reached the STM32


def test_ready_read_while_low_lets_the_peer_run(mp: Mp, esp: VirtualEsp32, fake_peer: FakePeer) -> None:
    with esp.lock:
        fake_peer.busy_ms = 30.0    # the first READY read finds it low for 30 ms of virtual time
    code = ("import time\nfrom machine import Pin\nr = Pin(27, Pin.IN, Pin.PULL_DOWN)\n"
            "t = time.ticks_ms(); n = 0\n"
            "while not r.value() and n < 1000: n += 1\n"
            "print(r.value(), 25 <= time.ticks_diff(time.ticks_ms(), t) <= 60, n < 100)\n")
    assert mp("exec", code).stdout == "1 True True\n"


def test_nrst_is_open_drain(mp: Mp, fake_peer: FakePeer) -> None:
    code = ("from machine import Pin\nn = Pin(4, Pin.OPEN_DRAIN, value=1)\n"
            "a = n.value(); n(0); b = n.value(); n(1); print(a, b, n.value())\n")
    assert mp("exec", code).stdout == "1 0 1\n"
    nrst = [e[2] for e in fake_peer.log if e[0] == "pin" and e[1] == GPIO_NRST]
    assert nrst[-3:] == [None, 0, None]      # released, pulled low, released: never driven high


def test_unique_id_and_time(mp: Mp) -> None:
    code = ("import machine, time\nprint(len(machine.unique_id()))\n"
            "t = time.ticks_ms(); time.sleep_ms(120); d = time.ticks_diff(time.ticks_ms(), t)\n"
            "print(120 <= d < 400)\n")
    assert mp("exec", code).stdout == "6\nTrue\n"


def test_gc_reports_an_esp32_sized_heap(mp: Mp) -> None:
    code = ("import gc\ngc.collect()\na = gc.mem_alloc(); f = gc.mem_free()\n"
            "b = bytearray(20000)\nprint(a < 4000, 100000 < f <= 111168, gc.mem_alloc() - a >= 20000,\n"
            "      gc.mem_free() < f - 19000, gc.peak() >= 20000)\n")
    assert mp("exec", code).stdout == "True True True True True\n"


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP server on the loopback that answers each line with its upper-case copy."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            buf = b""
            while not buf.endswith(b"\n"):
                data = conn.recv(100)
                if not data:
                    return
                buf += data
            conn.sendall(buf.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    srv.close()
    thread.join(5)


def test_socket_is_real_tcp_while_wifi_is_up(mp: Mp, echo_server: int) -> None:
    code = ("import network, socket\n"
            "w = network.WLAN(network.STA_IF); w.active(True); w.connect('lab', 'pw')\n"
            "print(w.isconnected(), w.ifconfig()[0])\n"
            f"a = socket.getaddrinfo('127.0.0.1', {echo_server})[0][-1]\n"
            "s = socket.socket(); s.settimeout(5); s.connect(a)\n"
            "s.write(b'hello esp32\\n'); buf = bytearray(64); n = s.readinto(buf)\n"
            "print(bytes(buf[:n])); s.close()\n")
    assert mp("exec", code).stdout == "True 192.168.4.2\nb'HELLO ESP32\\n'\n"


def test_wifi_down_fails_connect_and_sockets(mp: Mp, esp: VirtualEsp32, echo_server: int) -> None:
    esp.set_wifi(False)
    code = ("import network, socket, errno\n"
            "w = network.WLAN(network.STA_IF); w.active(True); w.connect('lab', 'pw')\n"
            "print(w.isconnected(), w.status() == network.STAT_NO_AP_FOUND)\n"
            "try:\n"
            f" s = socket.socket(); s.connect(('127.0.0.1', {echo_server}))\n"
            "except OSError as e:\n print(e.errno, e.errno == getattr(errno, 'EHOSTUNREACH'))\n")
    # 118: the ESP32 port's EHOSTUNREACH (newlib), not Linux's 113 (twin/esp32_twin/mpy/vesp32_errno.py)
    assert mp("exec", code).stdout == "False True\n118 True\n"


def test_socket_errors_are_micropython_errno(mp: Mp) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()                              # nothing listens there now
    code = ("import network, socket, errno\n"
            "w = network.WLAN(network.STA_IF); w.active(True); w.connect('lab', 'pw')\n"
            "try:\n"
            f" s = socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', {port}))\n"
            "except OSError as e:\n print(e.errno == errno.ECONNREFUSED, e)\n")
    assert mp("exec", code).stdout == "True [Errno 111] ECONNREFUSED\n"
