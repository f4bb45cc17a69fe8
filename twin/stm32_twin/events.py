"""Virtual time, the event scheduler and the event record of the twin.

Time is an integer number of picoseconds since power-on, so that sums of cycle times at any clock
stay exact enough (one rounding of < 1 ps per CPU slice) and runs are reproducible bit for bit.
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
