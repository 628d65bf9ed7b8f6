"""Who may open the console: transcripts, recordings and caller numbers are personal data.

The console fails closed: nothing under it is served without a login, wherever the request comes from. A
reverse proxy, an ``ssh -R`` tunnel or socat on the same host makes every visitor look local, so where a
connection comes from proves nothing. With ``CONSOLE_PASSWORD`` set the login asks for it; without one,
the process makes a random access token at start and prints a login URL carrying it (as Jupyter does), so a
developer on the machine gets in with one click and nobody else does.

A login issues a signed, expiring cookie. The signing key is derived from the instance secret (``SECRET_KEY``
or a random key kept in ``DATA_DIR``) together with the password or token, so instances sharing the secret
accept each other's cookies, and changing the password (or restarting without one) logs everybody out. A
logout revokes its cookie in this process, so a copied cookie cannot be replayed after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import Final

COOKIE_NAME: Final = "voicebot_console"
TOKEN_TTL_S: Final = 12 * 3600
_REVOKED_LIMIT: Final = 10_000


class Access(StrEnum):
    ALLOWED = "allowed"
    LOGIN_REQUIRED = "login_required"
    """No valid cookie: send the request to the login page (or answer 401)."""


class ConsoleAuth:
    def __init__(
        self,
        password: str,
        *,
        secret_key: bytes = b"",
        access_token: str | None = None,
        ttl_s: int = TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``access_token`` stands in for the password when none is set; a fresh one is made if not given."""
        self._password = password
        self.access_token = "" if password else (access_token or secrets.token_urlsafe(24))
        credential = password or self.access_token
        base = secret_key or secrets.token_bytes(32)
        self._key = hmac.new(
            base, b"voicebot-console-cookie\0" + credential.encode(), hashlib.sha256
        ).digest()
        self.ttl_s = ttl_s
        self._clock = clock
        self._revoked: OrderedDict[str, float] = OrderedDict()

    @property
    def password_set(self) -> bool:
        return bool(self._password)

    def check_password(self, attempt: str) -> bool:
        """Constant time; with no password set, the start-up access token is what is asked for."""
        expected = self._password or self.access_token
        if not expected or not attempt:
            return False
        return hmac.compare_digest(
            hashlib.sha256(attempt.encode()).digest(), hashlib.sha256(expected.encode()).digest()
        )

    def issue(self) -> str:
        body = f"{int(self._clock()) + self.ttl_s}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None) -> bool:
        if not token:
            return False
        body, _, mac = token.rpartition(".")
        expiry, _, nonce = body.partition(".")
        if not body or not hmac.compare_digest(mac, self._sign(body)):
            return False
        if nonce in self._revoked:
            return False
        return expiry.isdigit() and int(expiry) > self._clock()

    def revoke(self, token: str | None) -> None:
        """Logout: this cookie stops working here even though its signature and expiry are still fine."""
        if not token or not self.verify(token):
            return
        nonce = token.rpartition(".")[0].partition(".")[2]
        self._revoked[nonce] = self._clock()
        while len(self._revoked) > _REVOKED_LIMIT:
            self._revoked.popitem(last=False)

    def access(self, *, token: str | None) -> Access:
        return Access.ALLOWED if self.verify(token) else Access.LOGIN_REQUIRED

    def csrf_for(self, token: str) -> str:
        return self._sign("csrf:" + token)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()


class LoginThrottle:
    """At most ``limit`` failed logins per client within ``window_s``; then 429 until the window passes.

    Counts failures only, so a right password after a typo is not delayed. Clients are told apart by the
    connection's peer address: behind a proxy they share one budget, which slows an attacker and the
    operator alike but never lets a guess through faster.
    """

    def __init__(
        self, *, limit: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        recent = self._recent(client)
        if len(recent) < self.limit:
            return 0.0
        return max(0.0, recent[0] + self.window_s - self._clock())

    def failed(self, client: str) -> None:
        self._recent(client).append(self._clock())
        if len(self._failures) > 10_000:  # an address sweep must not grow this without bound
            for key in [k for k in self._failures if not self._recent(k)]:
                del self._failures[key]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str) -> list[float]:
        cutoff = self._clock() - self.window_s
        kept = [t for t in self._failures.get(client, []) if t > cutoff]
        self._failures[client] = kept
        return kept
