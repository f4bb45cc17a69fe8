"""Per-device rate limit of check-ins and reports, counted in the registry database.

    >>> from fota_server.registry import Registry
    >>> limiter = DeviceLimiter("3/minute", Registry(":memory:"))
    >>> [limiter.retry_after("0123456789abcdef01234567") for _ in range(4)][:3]
    [None, None, None]
    >>> parse_rate("30/minute"), parse_rate("100 per 5 seconds")
    ((30, 60), (100, 5))

A bridge makes one check-in and up to four reports per update cycle, one cycle per
``poll_interval_s`` (an hour by default): :data:`DEFAULT_DEVICE_RATE` leaves room for retries and
for ``invoke update`` run by hand, and stops a device (or a stolen device token) that loops. A
refused request is a 429 with ``Retry-After``: the seconds until the window has room again.

The counter is a fixed window per device (aligned on multiples of the period since the Unix epoch),
one row of the ``device_hits`` table: every server process and host sharing the registry shares the
budget, and a server process keeps no rate-limit state of its own. Counting is one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (:meth:`fota_server.registry.Registry.count_hit`)
per request; a refused request is not counted further. A fixed window lets a device make up to twice
the limit across a window boundary, which is enough to stop a loop.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_DEVICE_RATE = "30/minute"
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)


class HitCounter(Protocol):
    def count_hit(self, device_id: str, window_start: int, limit: int) -> tuple[int, int]: ...


def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/minute"`` (or ``"30 per minute"``, ``"100/5 seconds"``): (requests, period in seconds)."""
    m = _RATE.fullmatch(rate)
    if m is None or int(m[1]) < 1 or (m[2] is not None and int(m[2]) < 1):
        raise ValueError(f"malformed rate limit {rate!r} (expected for example '30/minute': at least one "
                         "request per second, minute, hour or day)")
    return int(m[1]), int(m[2] or 1) * _UNITS[m[3].lower()]


class DeviceLimiter:
    def __init__(self, rate: str, counter: HitCounter, clock: Callable[[], float] = time.time) -> None:
        self.limit, self.period = parse_rate(rate)
        self.rate = rate
        self._counter = counter
        self._clock = clock

    def retry_after(self, device_id: str) -> int | None:
        """Count one request of ``device_id``: None when allowed, else the seconds to wait."""
        now = self._clock()
        hits, start = self._counter.count_hit(device_id, int(now // self.period) * self.period, self.limit)
        if hits <= self.limit:
            return None
        return max(1, math.ceil(start + self.period - now))
