"""invoke monitor's core on two pseudo-terminal pairs standing in for the ESP32's USB UART and the
USB-serial adapter on the STM32's PA2."""

from __future__ import annotations

import os
import threading
import time

import pytest
from stm32_fota.monitor import Console, MonitorError, monitor


def _pty() -> tuple[int, str]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


def test_lines_of_both_consoles_come_out_tagged_and_timed() -> None:
    esp_fd, esp = _pty()
    stm_fd, stm = _pty()
    out: list[str] = []
    stop = threading.Event()
    consoles = [Console("esp32", esp), Console("stm32", stm)]
    t = threading.Thread(target=monitor, args=(consoles, out.append, stop))
    t.start()
    try:
        time.sleep(0.2)
        os.write(stm_fd, b"boot: start v1.0.0+0 reset por clock hse-pll 168 MHz\r\n")
        time.sleep(0.3)
        os.write(esp_fd, b"fota: bridge ok, ")          # a line in two pieces
        time.sleep(0.1)
        os.write(esp_fd, b"polling\r\napp: not a line yet")
        deadline = time.monotonic() + 5
        while len(out) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(timeout=5)
        os.close(esp_fd)
        os.close(stm_fd)
    assert len(out) == 2, out
    first, second = out
    assert first.endswith(" stm32 | boot: start v1.0.0+0 reset por clock hse-pll 168 MHz"), first
    assert second.endswith(" esp32 | fota: bridge ok, polling"), second
    t1, t2 = float(first.split()[0]), float(second.split()[0])
    assert 0.1 <= t1 < t2 and t2 - t1 >= 0.3, out


def test_a_port_that_does_not_exist_is_named() -> None:
    with pytest.raises(MonitorError, match="cannot open the stm32 console /dev/nonexistent-tty"):
        monitor([Console("stm32", "/dev/nonexistent-tty")], print, threading.Event())


def test_two_consoles_need_two_labels() -> None:
    with pytest.raises(MonitorError, match="same label"):
        monitor([Console("esp32", "/dev/null"), Console("esp32", "/dev/null")], print, threading.Event())
