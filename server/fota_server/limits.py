"""Limits checked before any work: URL and header size, the token, the body size.

    >>> from fota_server.auth import Tokens
    >>> app = GuardMiddleware(inner_app, Tokens(device="d", operator="o"))   # doctest: +SKIP

:class:`GuardMiddleware` wraps the whole application (a plain ASGI middleware, so it sees the
request before FastAPI reads or parses anything) and answers, in this order:

1. 414 when the path and query exceed :data:`MAX_URL_BYTES`;
2. 431 when the headers exceed :data:`MAX_HEADER_BYTES` in all;
3. 401 / 403 when the route's role needs a token that the ``Authorization`` header does not carry
   (:mod:`fota_server.auth`); no byte of the body has been read at that point;
4. 413 when ``Content-Length`` announces more than :data:`MAX_BODY_BYTES` (400 when it is
   malformed). A body without a length (chunked) is counted while it streams in, by FastAPI's
   own limit (``APIRouter(max_body_size=...)``): 413 as soon as it grows past the limit, and reading
   stops there.

The request line and headers themselves are bounded before they reach the application, by the
HTTP protocol uvicorn runs (:mod:`fota_server.protocol`): :data:`MAX_HEAD_BYTES` in all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fota_server.auth import Tokens, role_for

MAX_BODY_BYTES = 16 * 1024  # a check-in is ~250 bytes, a report with the longest reason ~3 KB
MAX_URL_BYTES = 2048  # path and query string
MAX_HEADER_BYTES = 8 * 1024  # names and values of all headers
MAX_HEAD_BYTES = 16 * 1024  # request line and headers as received (enforced by the protocol)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 413: "Content Too Large",
           414: "URI Too Long", 429: "Too Many Requests", 431: "Request Header Fields Too Large"}


def error_body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


async def reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A JSON error answer ``{"detail": ...}``, sent straight from the middleware."""
    body = error_body(detail)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(self, app: ASGIApp, tokens: Tokens, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body = max_body

    def _check_head(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url > MAX_URL_BYTES:
            return 414, f"the URL is {url} bytes long; this server accepts at most {MAX_URL_BYTES}", {}
        size = 0
        authorization = None
        length = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
        if size > MAX_HEADER_BYTES:
            return 431, f"the headers are {size} bytes; this server accepts at most {MAX_HEADER_BYTES}", {}
        role = role_for(scope["path"])
        if role is not None:
            refused = self.tokens.refusal(role, authorization)
            if refused is not None:
                return refused[0], refused[1], {"WWW-Authenticate": "Bearer"}
        if length is not None:
            if not length.isdigit() or len(length) > 18:
                return 400, "malformed Content-Length header", {}
            if int(length) > self.max_body:
                return 413, (f"the body is {int(length)} bytes; this server accepts at most "
                             f"{self.max_body}"), {}
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self._check_head(scope)
            if refused is not None:
                await reply(send, *refused)
                return
        await self.app(scope, receive, send)
