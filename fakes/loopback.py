"""Serves an ASGI app under a real uvicorn server inside the caller's event loop, on 127.0.0.1.

Used by the provider fakes, the Twilio REST fake and the tests' bot: real sockets and WebSocket upgrades,
no signal handlers taken from the host process, and its logging left exactly as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn


@asynccontextmanager
async def serve_loopback(
    app: Any,
    *,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: Literal["on", "off"] = "off",
    ws_max_size: int = 1 << 20,
    websockets: bool = False,
    ws_protocol: type[Any] | None = None,
    ws_ping_interval: float = 20.0,
    ws_ping_timeout: float = 20.0,
) -> AsyncIterator[int]:
    """Yields the bound port; on exit asks the server to stop and waits until it has.

    WebSocket upgrades are served with ``lifespan="on"`` (the bot) or ``websockets=True`` (the fakes);
    ``ws_protocol`` is the bot's own protocol class, as ``voicebot serve`` passes it to uvicorn.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        ws=ws_protocol or ("auto" if lifespan == "on" or websockets else "none"),
        ws_max_size=ws_max_size,
        ws_ping_interval=ws_ping_interval,  # uvicorn's defaults unless a test times the keepalive
        ws_ping_timeout=ws_ping_timeout,
        ws_per_message_deflate=False,  # as `voicebot serve`: μ-law does not compress
        access_log=False,
        log_config=None,
        log_level=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve(), name=name)  # _serve: installs no signal handlers
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"{name}: uvicorn exited before it started")
            await asyncio.sleep(0.005)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
