"""Runs an ASGI app under a real uvicorn server on 127.0.0.1:0 inside the test's own event loop.

Real sockets, real WebSocket upgrades, real lifespan: what Twilio would meet, minus TLS. Usage::

    async with run_app(create_app(settings, session_factory=...)) as base_url:
        ...  # base_url == "http://127.0.0.1:<port>"
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fakes.loopback import serve_loopback
from web.media_protocol import MediaSocketProtocol


@asynccontextmanager
async def run_app(app: Any, *, ws_max_size: int = 1 << 20) -> AsyncIterator[str]:
    """``ws_max_size`` and the WebSocket protocol match ``voicebot serve``: the media socket's direct path
    and oversize handling are tested as they run."""
    async with serve_loopback(
        app, name="app-under-test", lifespan="on", ws_max_size=ws_max_size, ws_protocol=MediaSocketProtocol
    ) as port:
        yield f"http://127.0.0.1:{port}"
