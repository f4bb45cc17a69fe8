"""Per-device rate limit of check-ins and reports (the ``limits`` package, sliding window).

    >>> import asyncio
    >>> limiter = DeviceLimiter("3/minute")
    >>> [asyncio.run(limiter.retry_after("0123456789abcdef01234567")) for _ in range(4)][:3]
    [None, None, None]

A bridge makes one check-in and up to four reports per update cycle, one cycle per
``poll_interval_s`` (an hour by default): :data:`DEFAULT_DEVICE_RATE` leaves room for retries and
for ``invoke update`` run by hand, and stops a device (or a stolen device token) that loops. A
refused request is a 429 with ``Retry-After``: the seconds until the window has room again.

The sliding-window counter keeps two counters per device (constant memory and time per request,
whatever the rate) in this process (``memory://``); a ``limits`` storage URI (for example
``async+redis://host``) shares them between several server processes.
"""

from __future__ import annotations

import math
import time

from limits import parse, storage
from limits.aio import strategies

DEFAULT_DEVICE_RATE = "30/minute"


class DeviceLimiter:
    def __init__(self, rate: str = DEFAULT_DEVICE_RATE, storage_uri: str = "async+memory://") -> None:
        try:
            self.item = parse(rate)
        except ValueError:
            raise ValueError(f"malformed rate limit {rate!r} (expected for example '30/minute')") from None
        self.rate = rate
        self._limiter = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(storage_uri))

    async def retry_after(self, device_id: str) -> int | None:
        """Count one request of ``device_id``: None when allowed, else the seconds to wait."""
        if await self._limiter.hit(self.item, "device", device_id):
            return None
        reset = (await self._limiter.get_window_stats(self.item, "device", device_id)).reset_time
        return max(1, math.ceil(reset - time.time()))
