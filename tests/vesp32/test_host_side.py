"""The host side of the virtual ESP32 without Node: filesystem errno, frames, pins and time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from esp32_twin import DeviceOSError, FakePeer
from esp32_twin.channel import ChannelError, FrameReader, encode_frame
from esp32_twin.hostfs import HostFs
from esp32_twin.netstack import STAT_GOT_IP, STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD, NetStack, WifiConfig
from esp32_twin.peer import GPIO_CS, GPIO_NRST, GPIO_READY
from esp32_twin.services import MODE_IN, MODE_OPEN_DRAIN, MODE_OUT, PULL_DOWN, Services


def _errno(fn: Callable[..., object], *args: object) -> str:
    with pytest.raises(DeviceOSError) as info:
        fn(*args)
    return info.value.name


def test_hostfs_errors_are_errno_names(tmp_path: Path) -> None:
    fs = HostFs(tmp_path)
    assert _errno(fs.stat, "/missing") == "ENOENT"
    assert _errno(fs.open, "/missing", "r") == "ENOENT"
    fs.mkdir("/d")
    assert _errno(fs.mkdir, "/d") == "EEXIST"
    h = fs.open("/d/f", "w")
    assert fs.write(h, b"abc\ndef") == 7
    fs.close(h)
    assert _errno(fs.rmdir, "/d") == "ENOTEMPTY"
    assert _errno(fs.open, "/d", "r") == "EISDIR"
    assert _errno(fs.read, 999, 1) == "EBADF"
    assert _errno(fs.stat, "/../etc/passwd") == "EINVAL"        # never outside the directory
    h = fs.open("/d/f", "rb")
    assert fs.readline(h, 100) == b"abc\n" and fs.read(h, 100) == b"def"
    fs.close(h)
    assert fs.listdir("/") == [("d", True, 0)] and fs.listdir("/d") == [("f", False, 7)]
    assert fs.stat("/d/f")[:2] == (False, 7)


def test_frames_round_trip_in_pieces() -> None:
    data = encode_frame({"op": "spi", "a": [1]}, b"\x00\xff" * 3000) + encode_frame({"op": "out"})
    reader = FrameReader()
    frames = [f for i in range(0, len(data), 7) for f in reader.feed(data[i:i + 7])]
    assert [f.header["op"] for f in frames] == ["spi", "out"]
    assert frames[0].binary == b"\x00\xff" * 3000 and frames[1].binary == b""
    with pytest.raises(ChannelError, match="Failed to read a runner frame"):
        FrameReader().feed(b"\xff\xff\xff\x7f\x00\x00\x00\x00")


def test_wifi_states() -> None:
    net = NetStack(WifiConfig(ssid="lab", password="pw"))
    assert _errno(net.connect, "lab", "pw") == "EPERM"              # not active yet
    net.set_active(True)
    net.connect("other", "pw")
    assert net.status() == STAT_NO_AP_FOUND
    net.connect("lab", "wrong")
    assert net.status() == STAT_WRONG_PASSWORD
    net.connect("lab", "pw")
    assert net.status() == STAT_GOT_IP and net.connected()
    net.wifi.up = False                                              # the access point goes away
    assert not net.connected() and _errno(net.getaddrinfo, "localhost") == "EHOSTUNREACH"


def _services(tmp_path: Path, peer: FakePeer) -> Services:
    return Services(peer, HostFs(tmp_path), NetStack(), realtime=False)


def test_pins_follow_the_esp32_port(tmp_path: Path) -> None:
    peer = FakePeer()
    s = _services(tmp_path, peer)
    s.pin_write(GPIO_CS, 1)
    s.pin_mode(GPIO_CS, MODE_OUT, -1)            # value before mode: CS starts high, no glitch
    assert [e for e in peer.log if e[1] == GPIO_CS] == [("pin", GPIO_CS, 1)]
    s.pin_write(GPIO_NRST, 1)
    s.pin_mode(GPIO_NRST, MODE_OPEN_DRAIN, -1)
    s.pin_write(GPIO_NRST, 0)
    s.pin_write(GPIO_NRST, 1)
    assert [e[2] for e in peer.log if e[1] == GPIO_NRST] == [None, 0, None]
    assert s.pin_read(GPIO_NRST) == 1            # released: the STM32's pull-up
    s.pin_mode(GPIO_READY, MODE_IN, PULL_DOWN)
    peer.busy_ms = 7.0
    t0 = s.now_ms
    levels = [s.pin_read(GPIO_READY) for _ in range(5)]
    assert levels[0] == 0 and levels[-1] == 1    # each low read let the STM32 run a little
    assert 7.0 <= s.now_ms - t0 <= 7.0 + 4 * 2.0


def test_spi_needs_cs_low(tmp_path: Path) -> None:
    peer = FakePeer(respond=lambda tx: b"\xa5" * len(tx))
    s = _services(tmp_path, peer)
    s.pin_write(GPIO_CS, 1)
    s.pin_mode(GPIO_CS, MODE_OUT, -1)
    assert s.spi(1_000_000, b"\x01\x02") == b"\xff\xff"
    s.pin_write(GPIO_CS, 0)
    assert s.spi(1_000_000, b"\x01\x02") == b"\xa5\xa5"
    assert [e for e in peer.log if e[0] == "spi"] == [("spi", b"\x01\x02", 1_000_000)]


def test_sleep_advances_the_shared_clock(tmp_path: Path) -> None:
    peer = FakePeer()
    s = _services(tmp_path, peer)
    t0, p0 = s.now_ms, peer.time_ms
    s.sleep(250, lambda: False)
    assert s.now_ms - t0 >= 250 and peer.time_ms - p0 == pytest.approx(s.now_ms - t0)
    assert s.handle("ticks", [], b"", lambda: False).value == int(s.now_ms) & ((1 << 30) - 1)
