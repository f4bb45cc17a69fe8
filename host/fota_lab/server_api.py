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
    """JSON requests to the server at ``base_url`` (no trailing slash), under /api/v1; ``context``:
    the TLS context of an https:// server (default: the system's CAs)."""

    def __init__(self, base_url: str, timeout_s: float = TIMEOUT_S,
                 context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.context = context

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method`` ``path`` (below /api/v1) with an optional JSON body; the decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + PREFIX + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self.context) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise LabError(f"Failed to {method} {path}: HTTP {e.code} {e.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise LabError(f"Failed to {method} {path}: {e}") from None
        except ValueError as e:
            raise LabError(f"Failed to {method} {path}: the answer is not JSON ({e})") from None

    def status(self) -> dict[str, Any]:
        """GET /status: the server's release and sync state."""
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def sync(self) -> dict[str, Any]:
        """POST /sync: the server fetches the bucket's newest release now."""
        result: dict[str, Any] = self.request("POST", "/sync")
        return result

    def device(self, device_id: str) -> dict[str, Any]:
        """GET /devices/{id}: the server's record of a device, with its update history."""
        result: dict[str, Any] = self.request("GET", f"/devices/{urllib.parse.quote(device_id)}")
        return result

    def updates(self, device_id: str) -> list[dict[str, Any]]:
        """GET /updates?device_id=: a device's update records, newest first."""
        query = urllib.parse.urlencode({"device_id": device_id})
        result: list[dict[str, Any]] = self.request("GET", f"/updates?{query}")
        return result
