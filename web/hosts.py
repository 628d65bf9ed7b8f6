"""The edge guard: requests whose ``Host`` names a host not ours, or whose declared body is oversized,
are refused before routing.

Without it, DNS rebinding works against a bot on a developer's laptop: a web page on ``evil.example`` whose
name is re-pointed at 127.0.0.1 could read the console with the browser's own connection. Litestar's
``AllowedHostsConfig`` compares the whole header, port included, so a server on a random test port or behind
a proxy that keeps the port would need every port listed; this check compares the host name only, which is
what rebinding changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import structlog

from web.settings import WILDCARD_HOSTS, Settings

log = structlog.get_logger()

MAX_BODY_BYTES = 1 << 20
"""No route takes more: refused by its declared length before routing, and by Litestar while reading."""
OPEN_PATHS = frozenset({"/health"})
"""Answered under any host name: a container probe asks by the pod's address, and liveness tells nothing."""
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings: Settings) -> list[str]:
    """``ALLOWED_HOSTS`` when set; otherwise localhost, ``HOST`` (unless a wildcard address) and the host
    of ``PUBLIC_URL``."""
    if settings.allowed_hosts.strip():
        return [h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()]
    hosts = list(_LOOPBACK_NAMES)
    if settings.host not in WILDCARD_HOSTS:
        hosts.append(settings.host.lower())
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    if public:
        hosts.append(public.lower())
    return hosts


def host_name(header: str) -> str:
    """``Example.com:8000`` → ``example.com``; ``[::1]:8000`` → ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts = list(hosts)
        self._any = "*" in self.hosts
        patterns = [
            rf"(.+\.)?{re.escape(h[2:])}" if h.startswith("*.") else re.escape(h)
            for h in self.hosts
            if h != "*"
        ]
        self._pattern = re.compile("|".join(patterns) or r"(?!)")

    def allows(self, header: str | None) -> bool:
        if self._any:
            return True
        return bool(header) and self._pattern.fullmatch(host_name(header or "")) is not None


def host_check_middleware(check: HostCheck) -> Any:
    """An ASGI middleware factory for ``Litestar(middleware=[...])``; lifespan passes untouched."""

    def middleware(app: Any) -> Any:
        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
            if not check.allows(host) and scope.get("path") not in OPEN_PATHS:
                log.warning("host_refused", path=scope.get("path", ""), host=(host or "")[:100])
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _refuse(send, 421, b'{"error":"this server does not answer for that host name"}')
                return
            length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                log.warning("body_too_large", path=scope.get("path", ""), length=int(length))
                await _refuse(send, 413, b'{"error":"request body too large"}')
                return
            await app(scope, receive, send)

        return guarded

    return middleware


async def _refuse(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
