"""Proof that a request comes from Twilio: the ``X-Twilio-Signature`` check and a one-time stream token.

The signed URL is rebuilt from ``PUBLIC_URL``, never from what the server sees: behind a TLS proxy or a
tunnel the request arrives as ``http://127.0.0.1:8000/...`` while Twilio signed ``https://bot.example/...``.
The WebSocket upgrade is signed over the ``wss://`` URL written in the TwiML, with no parameters.

Twilio signs with HMAC-SHA1 over the auth token, or, for webhooks configured with a SharedKey (header
``X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256``), with the algorithm named there over
the shared key's secret. A JSON body is not part of the signed string: Twilio adds ``bodySHA256`` (hex
SHA-256 of the raw body) to the URL's query, signs the URL, and the body must hash to that value.

The token is defence in depth that works even without an auth token (and without trusting proxies): /voice
issues one per CallSid inside the TwiML, and the stream's ``start`` message must bring it back once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from multidict import MultiDict
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "x-twilio-signature"
SIGNATURE_SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


class TwilioSignatures:
    """Validates webhook and upgrade signatures against URLs derived from the public base URL."""

    def __init__(self, auth_token: str, public_url: str, *, shared_key: str = "") -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._shared = RequestValidator(shared_key) if shared_key and auth_token else None
        self.public_url = public_url.rstrip("/")

    @property
    def enabled(self) -> bool:
        return self._validator is not None

    def public(self, path: str, query: str = "") -> str:
        """``https://bot.example.com`` + ``/voice`` (+ ``?query`` exactly as received)."""
        return self.public_url + path + (f"?{query}" if query else "")

    def stream_url(self, path: str = "/media") -> str:
        """The ``wss://`` URL for ``<Stream url>``: same host and base path, WebSocket scheme, no query."""
        parts = urlsplit(self.public(path))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path, "", ""))

    def check_webhook(
        self,
        path: str,
        query: str,
        params: Iterable[tuple[str, str]],
        signature: str | None,
        *,
        settings_header: str | None = None,
    ) -> bool:
        """A form POST: the signature covers the public URL (with query) plus every form field."""
        validator, algorithm = self._pick(settings_header)
        if validator is None:
            return self._validator is None
        if not signature or not self.public_url:
            return False
        return bool(validator.validate(self.public(path, query), MultiDict(params), signature, algorithm))

    def check_json(
        self, path: str, query: str, body: str, signature: str | None, *, settings_header: str | None = None
    ) -> bool:
        """A JSON POST: the URL carries ``bodySHA256`` and is signed; the body must hash to it. A JSON body
        without ``bodySHA256`` is refused when signatures are on (nothing would cover it)."""
        validator, algorithm = self._pick(settings_header)
        if validator is None:
            return self._validator is None
        if not signature or not self.public_url or "bodySHA256=" not in query:
            return False
        return bool(validator.validate(self.public(path, query), body, signature, algorithm))

    def _pick(self, settings_header: str | None) -> tuple[RequestValidator | None, str]:
        """SHA-1 over the auth token unless the request names another algorithm; SHA-256 with a
        SharedKey's secret when one is configured, else over the auth token."""
        if self._validator is None:
            return None, HMAC_SHA1
        algorithm = get_signature_algorithm(settings_header)
        if algorithm not in (HMAC_SHA1, HMAC_SHA256):
            return None, algorithm
        if settings_header and self._shared is not None:
            return self._shared, algorithm
        return self._validator, algorithm

    def check_upgrade(self, path: str, query: str, signature: str | None) -> bool:
        """The WebSocket upgrade: signed over the ``wss://`` URL with empty params."""
        if self._validator is None:
            return True
        if not signature or not self.public_url:
            return False
        url = self.stream_url(path) + (f"?{query}" if query else "")
        return bool(self._validator.validate(url, {}, signature))


@dataclass(frozen=True, slots=True)
class _Issued:
    token: str
    expires_at: float


class CallTokens:
    """One-time, expiring stream tokens kept in this process, keyed by CallSid.

    Kept in memory for one instance; several instances share tokens in Redis (``web.fleet.RedisFleet``),
    since the /voice request and the WebSocket of one call may land on different instances.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 120.0,
        max_outstanding: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_outstanding
        self.max_outstanding = max_outstanding
        self._clock = clock
        self._issued: dict[str, _Issued] = {}

    def issue(self, call_sid: str) -> str:
        """A fresh token for ``call_sid``; a retried webhook replaces the earlier one."""
        self._expire()
        if len(self._issued) >= self._max:
            oldest = min(self._issued, key=lambda sid: self._issued[sid].expires_at)
            del self._issued[oldest]
        token = secrets.token_urlsafe(18)
        self._issued[call_sid] = _Issued(token=token, expires_at=self._clock() + self._ttl)
        return token

    def verify(self, call_sid: str, token: str | None) -> bool:
        """True once for the issued token; any attempt, right or wrong, uses the token up."""
        issued = self._issued.pop(call_sid, None)
        if issued is None or not token or issued.expires_at < self._clock():
            return False
        return hmac.compare_digest(issued.token.encode(), token.encode())

    def discard(self, call_sid: str) -> None:
        self._issued.pop(call_sid, None)

    @property
    def outstanding(self) -> int:
        """Tokens issued and not yet used: calls answered with TwiML whose stream has not started."""
        self._expire()
        return len(self._issued)

    def _expire(self) -> None:
        now = self._clock()
        for sid in [sid for sid, issued in self._issued.items() if issued.expires_at < now]:
            del self._issued[sid]
