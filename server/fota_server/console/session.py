"""Who may use the console: a login with the operator token, then a signed session cookie.

    >>> keys = SessionKeys("op-token")
    >>> cookie = keys.issue(now=1000.0)
    >>> keys.check(cookie, now=1001.0) is not None
    True
    >>> keys.check(cookie + "0", now=1001.0) is None
    True

The cookie holds ``<nonce>.<expiry>.<mac>``: a random nonce, the Unix time it expires at and an
HMAC-SHA256 of both under a key derived from the operator token, so every server process sharing
the token accepts it and changing the token ends every session. The token itself is never in the
cookie, a URL or a log. The cookie is HttpOnly and SameSite=Strict (Secure over HTTPS).

Forms that change something (the rollout buttons, logout) carry a CSRF token, the HMAC of the
session's nonce under the same key: a page of another site can neither read it nor, with
SameSite=Strict, send the cookie. Scripts may instead send ``Authorization: Bearer <operator
token>`` with every request (no cookie, so no CSRF token either). Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "fota_console"
SESSION_S = 12 * 3600  # a session lasts a working day, then the operator logs in again


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int
    csrf: str


@dataclass
class SessionKeys:
    """Issue and check session cookies and CSRF tokens for one operator token."""

    operator_token: str = field(repr=False)
    lifetime_s: int = SESSION_S
    _key: bytes = field(init=False, repr=False)
    _token_digest: bytes = field(init=False, repr=False)
    _revoked: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        token = self.operator_token.encode()
        self._key = hmac.new(token, b"fota-console-session-v1", hashlib.sha256).digest()
        self._token_digest = hashlib.sha256(self.operator_token.encode()).digest()

    def _mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, presented: str) -> bool:
        """Whether ``presented`` is the operator token (SHA-256 of both, then a constant-time compare)."""
        return hmac.compare_digest(hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest(),
                                   self._token_digest)

    def issue(self, now: float | None = None) -> str:
        """A new session cookie's value."""
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{expires}.{self._mac(f'{nonce}.{expires}')}"

    def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie stands for; None when it is missing, forged, expired or logged out."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        nonce, expires, mac = parts
        if not hmac.compare_digest(mac.encode(), self._mac(f"{nonce}.{expires}").encode()):
            return None
        if int(expires) <= (time.time() if now is None else now) or nonce in self._revoked:
            return None
        return Session(nonce, int(expires), self._mac(f"csrf:{nonce}"))

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), session.csrf.encode())

    def revoke(self, session: Session) -> None:
        """Logout: this process refuses the cookie from now on (the browser drops it as well)."""
        self._revoked.add(session.nonce)
        if len(self._revoked) > 10_000:  # bounded: the oldest logouts expire on their own anyway
            self._revoked.pop()
