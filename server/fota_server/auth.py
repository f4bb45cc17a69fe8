"""Who may call what: the device role and the operator role, each with its own bearer token.

    >>> tokens = Tokens(device="dev-token", operator="op-token")
    >>> role_for("/api/v1/checkin"), role_for("/api/v1/sync"), role_for("/openapi.json")
    ('device', 'operator', None)
    >>> tokens.refusal("operator", b"Bearer dev-token")[0]
    403

- **device**: ``POST /checkin``, ``GET|HEAD /firmware/...``, ``POST /report``: what a bridge does.
- **operator**: every other route under ``/api/v1`` (sync, device and update lists, status, and
  whatever is added later: unknown routes default to the operator).
- public: the schema and its pages (``/openapi.json``, ``/docs``, ``/redoc``).

A role whose token is configured needs ``Authorization: Bearer <that token>``; the other role's
token is refused with 403. With no token at all (loopback only), every route is open. With only a
device token (loopback), the operator routes are refused until an operator token is configured:
the device token never grants them. Tokens are compared in constant time (SHA-256 of both, then
``hmac.compare_digest``, so the time depends neither on the content nor on the length).

The check runs in :class:`fota_server.limits.GuardMiddleware`, before any byte of the body is
read; :func:`document_roles` writes the same rule into ``/openapi.json`` (a security scheme per
role, and on every operation the scheme :func:`role_for` gives its path), so the documented
contract and the enforced one cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["device", "operator"]

API_PREFIX = "/api/v1"
_DEVICE_PATHS = frozenset({f"{API_PREFIX}/checkin", f"{API_PREFIX}/report"})
_DEVICE_PREFIXES = (f"{API_PREFIX}/firmware/",)

SCHEMES: dict[Role, tuple[str, str]] = {
    "device": ("DeviceToken", "The device token (FOTA_SERVER_TOKEN): check-in, download, report."),
    "operator": ("OperatorToken", "The operator token (FOTA_OPERATOR_TOKEN): sync, device and update "
                                  "lists, status."),
}

_ENV = {"device": "FOTA_SERVER_TOKEN", "operator": "FOTA_OPERATOR_TOKEN"}
_KEY = {"device": "token", "operator": "operator_token"}


def role_for(path: str) -> Role | None:
    """The role a request path needs; None for the public pages outside ``/api/v1``."""
    if path in _DEVICE_PATHS or path.startswith(_DEVICE_PREFIXES):
        return "device"
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return "operator"
    return None


def document_roles(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer schemes of both roles to an OpenAPI schema, and to each operation its role's."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for name, description in SCHEMES.values():
        schemes[name] = {"type": "http", "scheme": "bearer", "description": description}
    for path, operations in schema.get("paths", {}).items():
        role = role_for(path)
        if role is not None:
            for operation in operations.values():
                operation["security"] = [{SCHEMES[role][0]: []}]
    return schema


def _digest(token: str | bytes) -> bytes:
    raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True)
class Tokens:
    """The configured tokens (None: that role is not protected by a token)."""

    device: str | None = field(default=None, repr=False)
    operator: str | None = field(default=None, repr=False)

    _digests: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.device is not None and self.device == self.operator:
            raise ValueError("the device token and the operator token must differ")
        digests = {role: _digest(token) for role, token in (("device", self.device),
                                                             ("operator", self.operator)) if token}
        object.__setattr__(self, "_digests", digests)

    @property
    def any(self) -> bool:
        return self.device is not None or self.operator is not None

    def _matches(self, presented: bytes, role: Role) -> bool:
        wanted = self._digests.get(role)
        return wanted is not None and hmac.compare_digest(_digest(presented), wanted)

    def refusal(self, role: Role, authorization: bytes | None) -> tuple[int, str] | None:
        """None when ``authorization`` (the raw header) grants ``role``; else (status, message)."""
        if not self.any:
            return None
        wanted = self.device if role == "device" else self.operator
        if wanted is None:  # only the other role has a token: this role stays closed
            return 401, (f"this server has no {role} token configured, so {role} routes are closed; "
                         f"set {_ENV[role]} (or [server] {_KEY[role]} in the config file)")
        scheme, _, presented = (authorization or b"").strip().partition(b" ")
        presented = presented.strip()
        if scheme.lower() != b"bearer" or not presented:
            return 401, f"missing {role} token (Authorization: Bearer <token>)"
        if self._matches(presented, role):
            return None
        if self._matches(presented, "operator" if role == "device" else "device"):
            return 403, f"this route needs the {role} token; the token sent is for another role"
        return 401, f"wrong {role} token (Authorization: Bearer <token>)"
