"""Virtual time and events: the clock every model reads, the timers ahead, and the record of what
the outside world could observe.

Time is an integer number of picoseconds since the twin was created, so that sums of cycle times
at any clock stay exact enough (one rounding of < 1 ps per CPU slice) and runs are reproducible
bit for bit.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PS_PER_US = 1_000_000
PS_PER_MS = 1_000_000_000
PS_PER_S = 1_000_000_000_000


@dataclass(frozen=True)
class Event:
    """Something the outside world can observe, with its virtual time.

    kind: 'led' (data: {'led': colour, 'on': bool}), 'pin' ({'pin': 'PB11', 'level': 0|1}),
    'uart' (the line, str), 'reset' ({'cause': 'power'|'pin'|'software'|'iwdg'}), 'fault' (message),
    'power' ('off' | 'on'), 'warning' (message, non-strict mode only).
    """

    time_ps: int
    kind: str
    data: Any

    @property
    def time_us(self) -> float:
        return self.time_ps / PS_PER_US

    @property
    def time_ms(self) -> float:
        return self.time_ps / PS_PER_MS

    def to_json(self) -> dict[str, Any]:
        return {"t_us": round(self.time_us, 3), "kind": self.kind, "data": self.data}

    def __str__(self) -> str:
        data = self.data
        if self.kind == "led":
            data = f"{data['led']} {'on' if data['on'] else 'off'}"
        elif self.kind == "pin":
            data = f"{data['pin']} = {data['level']}"
        elif self.kind == "reset":
            data = f"cause {data['cause']}"
        return f"[{self.time_ps / PS_PER_S:12.6f} s] {self.kind:<7} {data}"


@dataclass(order=True)
class _Timer:
    time_ps: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    name: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)


class Timer:
    """Handle of a scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("_t",)

    def __init__(self, t: _Timer) -> None:
        self._t = t

    @property
    def time_ps(self) -> int:
        return self._t.time_ps

    @property
    def pending(self) -> bool:
        return not self._t.cancelled

    def cancel(self) -> None:
        self._t.cancelled = True


class Scheduler:
    """A heap of timed callbacks. Callbacks with equal times run in the order they were scheduled."""

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()

    def clear(self) -> None:
        self._heap.clear()

    def at(self, time_ps: int, callback: Callable[[], None], name: str = "") -> Timer:
        t = _Timer(time_ps, next(self._seq), callback, name)
        heapq.heappush(self._heap, t)
        return Timer(t)

    def next_time_of(self, names: frozenset[str]) -> int | None:
        """The time of the next pending timer whose name is in ``names``."""
        times = [t.time_ps for t in self._heap if not t.cancelled and t.name in names]
        return min(times) if times else None

    def next_time(self) -> int | None:
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        return heap[0].time_ps if heap else None

    def pop_due(self, now_ps: int) -> Callable[[], None] | None:
        """The next callback due at or before ``now_ps`` (removed from the heap), else None."""
        heap = self._heap
        while heap:
            t = heap[0]
            if t.cancelled:
                heapq.heappop(heap)
                continue
            if t.time_ps > now_ps:
                return None
            heapq.heappop(heap)
            t.cancelled = True
            return t.callback
        return None


class VirtualTime(Scheduler):
    """Now, and the timers ahead. Models read ``now_ps`` and schedule with ``at``; only the CPU's
    run loop and ``advance`` move time forward."""

    def __init__(self) -> None:
        super().__init__()
        self.now_ps = 0

    def advance(self, t_ps: int) -> None:
        """Move to t_ps (never backwards), running the timers due until then in order."""
        while True:
            nxt = self.next_time()
            if nxt is None or nxt > t_ps:
                break
            self.now_ps = max(self.now_ps, nxt)
            self.run_due()
        self.now_ps = max(self.now_ps, t_ps)

    def run_due(self) -> None:
        while True:
            cb = self.pop_due(self.now_ps)
            if cb is None:
                return
            cb()


class EventLog:
    """Every event in order, the UART lines, and the listeners that see each event as it happens.
    ``after_emit`` (set by the run loop) may end the current CPU slice at an awaited event."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.events: list[Event] = []
        self.uart_lines: list[str] = []
        self.listeners: list[Callable[[Event], None]] = []
        self.after_emit: Callable[[], None] | None = None

    def emit(self, kind: str, data: Any) -> Event:
        ev = Event(self.time.now_ps, kind, data)
        self.events.append(ev)
        if kind == "uart":
            self.uart_lines.append(data)
        for fn in self.listeners:
            fn(ev)
        if self.after_emit is not None:
            self.after_emit()
        return ev
