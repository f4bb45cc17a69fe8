"""HTTP Range requests (RFC 9110 section 14) for the image download: one byte range.

    >>> parse_range("bytes=100-", 1000)
    (100, 999)
    >>> parse_range("bytes=-10", 1000)
    (990, 999)
    >>> parse_range(None, 1000) is None
    True

A bridge resumes an interrupted download with ``Range: bytes=N-``. Only single ranges are served;
a header with another unit or several ranges is ignored (the whole file is sent, as RFC 9110
allows). A malformed or unsatisfiable byte range raises :class:`RangeError` (416).
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"(\d*)-(\d*)")
_MAX_DIGITS = 18  # keeps int() cheap and the values far from any overflow


class RangeError(ValueError):
    """The Range header cannot be satisfied (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single byte range, None to send the whole file."""
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    m = _SPEC.fullmatch(spec.strip())
    if not m or not (m.group(1) or m.group(2)) or max(len(m.group(1)), len(m.group(2))) > _MAX_DIGITS:
        raise RangeError(f"malformed range {header[:60]!r}: expected bytes=FIRST-LAST, bytes=FIRST- "
                         "or bytes=-N")
    first_s, last_s = m.groups()
    if not first_s:  # suffix: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeError(f"range {header[:60]!r} selects no bytes of the {size}-byte file")
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        raise RangeError(f"malformed range {header[:60]!r}: last byte {last} is before first byte {first}")
    if first >= size:
        raise RangeError(f"range {header[:60]!r} starts at {first}, beyond the {size}-byte file")
    return first, min(last, size - 1)
