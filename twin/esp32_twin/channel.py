"""Frames between the host and the Node runner (see node/runner.mjs).

    u32 LE header length | u32 LE binary length | header (JSON, UTF-8) | binary

`FrameReader` assembles frames from bytes read on a non-blocking pipe; `encode_frame` builds one.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

_PREFIX = struct.Struct("<II")
MAX_HEADER = 1 << 20
MAX_BINARY = 1 << 24


class ChannelError(Exception):
    """The runner sent something that is not a frame."""


@dataclass
class Frame:
    header: dict[str, Any]
    binary: bytes = b""


def encode_frame(header: dict[str, Any], binary: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(head), len(binary)) + head + binary


class FrameReader:
    """Feed bytes with `feed`; complete frames come out of `frames`."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= _PREFIX.size:
            hlen, blen = _PREFIX.unpack_from(self._buf)
            if hlen > MAX_HEADER or blen > MAX_BINARY:
                raise ChannelError(f"Failed to read a runner frame: sizes {hlen}/{blen} out of range")
            end = _PREFIX.size + hlen + blen
            if len(self._buf) < end:
                break
            head = bytes(self._buf[_PREFIX.size:_PREFIX.size + hlen])
            binary = bytes(self._buf[_PREFIX.size + hlen:end])
            del self._buf[:end]
            try:
                header = json.loads(head)
            except ValueError as e:
                raise ChannelError(f"Failed to read a runner frame: bad header: {e}") from None
            if not isinstance(header, dict):
                raise ChannelError("Failed to read a runner frame: header is not an object")
            out.append(Frame(header, binary))
        return out
