"""Runs an ASGI app under a real uvicorn server on 127.0.0.1:0 inside the test's own event loop.

Real sockets, real WebSocket upgrades, real lifespan: what Twilio would meet, minus TLS. Usage::

    async with run_app(create_app(settings, session_factory=...)) as base_url:
        ...  # base_url == "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def run_app(app: Any, *, ws_max_size: int = 1 << 20) -> AsyncIterator[str]:
    """``ws_max_size`` matches ``voicebot serve``, so oversize handling is tested against the same limit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,  # leave the test's logging (structlog capture) exactly as it was
        log_level=None,
        lifespan="on",
        ws_max_size=ws_max_size,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve(), name="app-under-test")  # _serve: no signal handlers
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited before it started")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
