"""The lab's small JSON client of the update server's API (docs/server.md), on the standard library.

    >>> api = ServerApi("http://127.0.0.1:8080")     # doctest: +SKIP
    >>> api.sync()["status"], api.status()["version"] # doctest: +SKIP
    ('updated', '1.1.0')

Every failure is a :class:`LabError` naming the request: "Failed to GET /status: HTTP 503 ...".
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .errors import LabError

TIMEOUT_S = 10.0
PREFIX = "/api/v1"


class ServerApi:
    """JSON requests to the server at ``base_url`` (no trailing slash), under /api/v1, as an operator
    (``token``: the operator token, sent as a bearer token); ``context``: the TLS context of an
    https:// server (default: the system's CAs)."""

    def __init__(self, base_url: str, timeout_s: float = TIMEOUT_S,
                 context: ssl.SSLContext | None = None, token: str | None = None) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.context = context
        self.token = token

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                answers: tuple[int, ...] = ()) -> Any:
        """``method`` ``path`` (below /api/v1) with an optional JSON body; the decoded JSON answer.
        An HTTP error is a LabError, except the statuses in ``answers``, whose JSON body is returned."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + PREFIX + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self.context) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read()
            if e.code in answers:
                return json.loads(text)
            raise LabError(f"Failed to {method} {path}: HTTP {e.code} {text[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise LabError(f"Failed to {method} {path}: {e}") from None
        except ValueError as e:
            raise LabError(f"Failed to {method} {path}: the answer is not JSON ({e})") from None

    def status(self) -> dict[str, Any]:
        """GET /status: the server's release and sync state."""
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def sync(self) -> dict[str, Any]:
        """POST /sync: the server fetches the bucket's newest release now. A failed sync (502 / 503)
        is returned like a successful one: its ``status`` and ``message`` say why."""
        result: dict[str, Any] = self.request("POST", "/sync", answers=(502, 503))
        return result

    def device(self, device_id: str) -> dict[str, Any]:
        """GET /devices/{id}: the server's record of a device, with its update history."""
        result: dict[str, Any] = self.request("GET", f"/devices/{urllib.parse.quote(device_id)}")
        return result

    def updates(self, device_id: str) -> list[dict[str, Any]]:
        """GET /updates?device_id=: a device's update records, newest first, every page."""
        query = urllib.parse.urlencode({"device_id": device_id, "limit": 1000})
        result: list[dict[str, Any]] = []
        path: str | None = f"/updates?{query}"
        while path is not None:
            page = self.request("GET", path)
            result += page["items"]
            path = page["next"].removeprefix(PREFIX) if page["next"] else None
        return result
