"""What a device's bridge last reported from its STM32's INFO, worded for the device page.

    >>> h = health({"temp_centi": 2478, "uptime_ms": 93_784_000, "security_counter": 2, "key_id": "3fa2c1d0"})
    >>> h["Temperature"], h["Uptime"], h["Security counter"], h["Signing key"]
    ('24.78 °C', '1 d 2 h 3 min 4 s', '2', '3fa2c1d0')
    >>> health({})["Uptime"]
    'not reported'
"""

from __future__ import annotations

from typing import Any

NOT_REPORTED = "not reported"


def uptime_text(ms: int) -> str:
    """``ms`` as days, hours, minutes and seconds, leading zero units left out.

    >>> uptime_text(4_000), uptime_text(3_600_000), uptime_text(0)
    ('4 s', '1 h 0 min 0 s', '0 s')
    """
    seconds = ms // 1000
    parts, started = [], False
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        n, seconds = divmod(seconds, size)
        started = started or n > 0
        if started:
            parts.append(f"{n} {unit}")
    return " ".join([*parts, f"{seconds} s"])


def health(dev: dict[str, Any]) -> dict[str, str]:
    """The four reported facts of a device record (``registry.device``), each or "not reported"."""
    temp, up = dev.get("temp_centi"), dev.get("uptime_ms")
    counter, key = dev.get("security_counter"), dev.get("key_id")
    return {
        "Temperature": NOT_REPORTED if temp is None else f"{temp / 100:.2f} °C",
        "Uptime": NOT_REPORTED if up is None else uptime_text(up),
        "Security counter": NOT_REPORTED if counter is None else str(counter),
        "Signing key": NOT_REPORTED if key is None else key,
    }
