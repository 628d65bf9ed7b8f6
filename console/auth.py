"""Who may open the console: transcripts and caller numbers are personal data.

With ``CONSOLE_PASSWORD`` set, a login issues a signed, expiring cookie (HttpOnly, SameSite=Strict) that
every page, SSE stream and WebSocket checks. The signing key is derived from the password, so all instances
behind one load balancer accept the same cookie and changing the password logs everybody out; no session
state is kept on the server.

Without a password the console answers only requests that come straight from the loopback interface (a
developer's own machine, an SSH tunnel) and refuses anything that carries proxy headers, because a reverse
proxy on the same host would otherwise make every visitor look local.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Final

COOKIE_NAME: Final = "voicebot_console"
TOKEN_TTL_S: Final = 12 * 3600
_PROXY_HEADERS: Final = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


class Access(StrEnum):
    ALLOWED = "allowed"
    LOGIN_REQUIRED = "login_required"
    """A password is set and the request has no valid cookie: send it to the login page."""
    LOCAL_ONLY = "local_only"
    """No password is set and the request is not from this machine: refuse, and say how to fix it."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ConsoleAuth:
    def __init__(
        self, password: str, *, ttl_s: int = TOKEN_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self._password = password
        self._key = hashlib.sha256(b"voicebot-console-cookie\0" + password.encode()).digest()
        self.ttl_s = ttl_s
        self._clock = clock

    @property
    def password_set(self) -> bool:
        return bool(self._password)

    def check_password(self, attempt: str) -> bool:
        """Constant time, and false for every attempt when no password is configured."""
        if not self._password:
            return False
        return hmac.compare_digest(
            hashlib.sha256(attempt.encode()).digest(), hashlib.sha256(self._password.encode()).digest()
        )

    def issue(self) -> str:
        body = f"{int(self._clock()) + self.ttl_s}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None) -> bool:
        if not token or not self._password:
            return False
        body, _, mac = token.rpartition(".")
        expiry, _, _nonce = body.partition(".")
        if not body or not hmac.compare_digest(mac, self._sign(body)):
            return False
        return expiry.isdigit() and int(expiry) > self._clock()

    def access(self, *, token: str | None, client_host: str | None, headers: Mapping[str, str]) -> Access:
        if self.password_set:
            return Access.ALLOWED if self.verify(token) else Access.LOGIN_REQUIRED
        proxied = any(h in headers for h in _PROXY_HEADERS)
        return Access.ALLOWED if is_loopback(client_host) and not proxied else Access.LOCAL_ONLY

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
