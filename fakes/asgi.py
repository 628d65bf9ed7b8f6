"""The few raw-ASGI moves the provider fakes need, including the ones a web framework hides.

Faults such as "never answer" and "drop the connection mid-body" are exactly what frameworks protect an app
from, so the fakes speak ASGI directly: holding a request until the client disconnects, and returning before
the body is complete (uvicorn then closes the socket, which the client sees as a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOLD_MAX_S = 60.0
"""A held request ends by itself after this, so a forgotten fake can never keep a process alive."""


class Exchange:
    """One HTTP request/response on the fake server."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, stopping: asyncio.Event) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self._stopping = stopping
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        client = scope.get("client")
        self.client_port: int = int(client[1]) if client else 0
        self._body: bytes | None = None

    async def body(self) -> bytes:
        if self._body is None:
            parts = []
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    break
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(parts)
        return self._body

    async def json(self) -> Any:
        try:
            return json.loads(await self.body() or b"{}")
        except ValueError:
            return {}

    async def form(self) -> dict[str, Any]:
        """Multipart fields as text; an uploaded file as ``<name>_bytes`` (size) and ``<name>_filename``."""
        content_type = self.headers.get("content-type", "")
        raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + await self.body()
        fields: dict[str, Any] = {}
        message = BytesParser(policy=HTTP).parsebytes(raw)
        if not message.is_multipart():
            return fields
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            filename = part.get_filename()
            if filename is not None:
                fields[f"{name}_bytes"] = len(payload)
                fields[f"{name}_filename"] = filename
                fields[f"{name}_data"] = payload
            else:
                fields[name] = payload.decode("utf-8", errors="replace")
        return fields

    async def respond(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        await self.start(status, content_type, {**(headers or {}), "content-length": str(len(body))})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def respond_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        await self.respond(
            status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers
        )

    async def start(self, status: int, content_type: str, headers: dict[str, str] | None = None) -> None:
        pairs = [(b"content-type", content_type.encode())]
        pairs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await self._send({"type": "http.response.start", "status": status, "headers": pairs})

    async def write(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def hold(self) -> None:
        """Answers nothing until the client hangs up, the server stops, or ``HOLD_MAX_S`` passes."""
        await self.body()

        async def disconnected() -> None:
            while (await self._receive())["type"] != "http.disconnect":
                pass

        waiters = [asyncio.ensure_future(disconnected()), asyncio.ensure_future(self._stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=HOLD_MAX_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    async def pause(self, ms: float) -> bool:
        """Sleeps ``ms``; returns False if the server began stopping meanwhile (then the stream is cut)."""
        if ms > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ms / 1000):
                    await self._stopping.wait()
        return not self._stopping.is_set()
