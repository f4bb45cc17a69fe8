"""Run the twin in step with the wall clock (demos: LEDs blink at their real rate)."""

from __future__ import annotations

import threading
import time

from .board import Stm32Twin
from .events import PS_PER_S


def free_run(board: Stm32Twin, seconds: float | None = None, *, speed: float = 1.0, step_s: float = 0.01,
             stop: threading.Event | None = None) -> None:
    """Advance virtual time as wall-clock time passes (``speed`` virtual seconds per second) until
    ``seconds`` of virtual time have passed or ``stop`` is set. If the host cannot keep up, virtual
    time simply falls behind; it never runs ahead of the wall clock."""
    start_wall = time.monotonic()
    start_virtual = board.now_ps
    end = None if seconds is None else start_virtual + int(seconds * PS_PER_S)
    while stop is None or not stop.is_set():
        target = start_virtual + int((time.monotonic() - start_wall) * speed * PS_PER_S)
        if end is not None:
            target = min(target, end)
        if target > board.now_ps:
            board.run_to_ps(target)
        if end is not None and board.now_ps >= end:
            return
        time.sleep(step_s)
