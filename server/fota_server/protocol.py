"""uvicorn's HTTP protocol with the limits that must hold before a request reaches the application.

    >>> uvicorn.run(app, **uvicorn_options())          # doctest: +SKIP

uvicorn's httptools protocol (the fast one, with uvicorn[standard]) buffers the request line and
the headers without any limit, and after an early answer (401, 413) it reads and drops the rest of
the body for as long as the client sends it. :class:`GuardedHttpToolsProtocol` adds:

- at most :data:`~fota_server.limits.MAX_HEAD_BYTES` of request line and headers: beyond, 414
  (the URL alone is longer than :data:`~fota_server.limits.MAX_URL_BYTES`) or 431, and the
  connection is closed;
- at most :data:`MAX_DISCARD_BYTES` of body read and dropped after the answer went out: enough
  for a client that sends its body before reading the answer to see it, then the connection is
  closed.

Without httptools, uvicorn's h11 protocol is used with ``h11_max_incomplete_event_size`` (too
large a head is then a 400).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from fota_server.limits import MAX_HEAD_BYTES, MAX_URL_BYTES, REASONS, error_body

MAX_DISCARD_BYTES = 1024 * 1024
MAX_CONNECTIONS = 1024  # uvicorn's limit_concurrency: beyond, new requests get 503


def _refusal(status: int, detail: str) -> bytes:
    body = error_body(detail)
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def _protocol_class() -> type[asyncio.Protocol] | None:
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _in_head = True
        _head_bytes = 0
        _discarded = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_bytes = 0
            self._discarded = 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self.transport.is_closing():
                return
            # Everything of this chunk was head (the headers did not end in it).
            self._head_bytes += len(data)
            if len(self.url) > MAX_URL_BYTES:
                self._refuse(414, f"the URL is longer than {MAX_URL_BYTES} bytes, the most this server "
                                  "accepts")
            elif self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, f"the request line and headers are longer than {MAX_HEAD_BYTES} bytes, "
                                  "the most this server accepts")

        def on_body(self, body: bytes) -> None:
            if self.cycle is not None and self.cycle.response_complete:
                self._discarded += len(body)
                if self._discarded > MAX_DISCARD_BYTES:
                    self.transport.close()
                return
            super().on_body(body)

        def _refuse(self, status: int, detail: str) -> None:
            self.logger.warning("refused a request: %s", detail)
            self.transport.write(_refusal(status, detail))
            self.transport.close()

    return GuardedHttpToolsProtocol


def __getattr__(name: str) -> Any:
    """``GuardedHttpToolsProtocol`` by name, so that uvicorn's worker processes (started afresh, with
    ``--workers``) import it from a string instead of receiving a pickled class."""
    if name == "GuardedHttpToolsProtocol":
        cls = _protocol_class()
        if cls is not None:
            globals()[name] = cls
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply the limits."""
    protocol = _protocol_class()
    http: Any = f"{__name__}:GuardedHttpToolsProtocol" if protocol is not None else "h11"
    return {"http": http, "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
            "limit_concurrency": MAX_CONNECTIONS}
