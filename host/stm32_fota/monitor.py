"""Two consoles side by side: the ESP32's (its USB UART: the bridge's `fota:` lines, MicroPython's
REPL) and the STM32's USART2 (PA2 through a 3.3 V USB-serial adapter, `boot:` and `app:` lines),
each line stamped with the time it arrived and tagged with its source.

    from stm32_fota.monitor import Console, monitor
    monitor([Console("esp32", "/dev/ttyUSB0"), Console("stm32", "/dev/ttyUSB1")], print, stop)

Both run at 115200 8N1 (the STM32 firmware's and MicroPython's default). Reading a console never
writes to it, so the ESP32 is not interrupted (mpremote would stop main.py with Ctrl-C).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from .errors import FotaError

BAUD = 115200
LINE_MAX = 4096  # a line without a newline is shown once it reaches this length


class MonitorError(FotaError):
    """A console port cannot be opened or stopped working."""


@dataclass(frozen=True)
class Console:
    label: str
    port: str
    baud: int = BAUD


@dataclass(frozen=True)
class Line:
    t: float       # seconds since the monitor started
    label: str
    text: str


def format_line(line: Line, width: int) -> str:
    """``  12.345 stm32 | boot: start ...``: time since start, the source padded to ``width``."""
    return f"{line.t:8.3f} {line.label:<{width}} | {line.text}"


def _open(c: Console) -> serial.Serial:
    try:
        return serial.serial_for_url(c.port, baudrate=c.baud, timeout=0.05)
    except (serial.SerialException, OSError, ValueError) as e:
        raise MonitorError(f"monitor: cannot open the {c.label} console {c.port}: {e}") from None


def _reader(c: Console, port: serial.Serial, t0: float, out: queue.Queue, stop: threading.Event,
            clock: Callable[[], float]) -> None:
    buf = bytearray()
    try:
        while not stop.is_set():
            data = port.read(256)
            if not data:
                continue
            buf += data
            while b"\n" in buf or len(buf) >= LINE_MAX:
                cut = buf.find(b"\n")
                cut = LINE_MAX if cut < 0 else cut
                text = bytes(buf[:cut]).decode("utf-8", "replace").rstrip("\r")
                del buf[:cut + 1]
                out.put(Line(clock() - t0, c.label, text))
    except (serial.SerialException, OSError) as e:
        out.put(MonitorError(f"monitor: the {c.label} console {c.port} stopped: {e}"))
    finally:
        port.close()


def monitor(consoles: list[Console], emit: Callable[[str], None], stop: threading.Event,
            clock: Callable[[], float] = time.monotonic) -> None:
    """Show every line of every console through ``emit`` until ``stop`` is set. Raises
    MonitorError naming the port when one cannot be opened or fails."""
    if not consoles:
        raise MonitorError("monitor: no console given")
    labels = [c.label for c in consoles]
    if len(set(labels)) != len(labels):
        raise MonitorError(f"monitor: two consoles with the same label: {labels}")
    ports = [_open(c) for c in consoles]
    t0 = clock()
    lines: queue.Queue = queue.Queue()
    width = max(len(label) for label in labels)
    threads = [threading.Thread(target=_reader, args=(c, p, t0, lines, stop, clock), daemon=True)
               for c, p in zip(consoles, ports, strict=True)]
    for t in threads:
        t.start()
    try:
        while not stop.is_set() or not lines.empty():
            try:
                item = lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, MonitorError):
                raise item
            emit(format_line(item, width))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=1)
