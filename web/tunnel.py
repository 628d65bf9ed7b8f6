"""A public URL for a bot on this machine: an ngrok tunnel, and a watch that says loudly when it dies.

The official ``ngrok`` agent SDK is an optional extra (``pip install -e '.[tunnel]'``) and is imported only
here, when ``voicebot connect`` needs a tunnel; operators with their own tunnel or host set PUBLIC_URL.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import structlog

from media.errors import ConfigError

log = structlog.get_logger()

WATCH_INTERVAL_S = 30.0
"""How often the tunnel is probed through its public side; a dead tunnel is reported within this."""


@dataclass(slots=True)
class Tunnel:
    url: str
    close: Callable[[], Awaitable[None]]


TunnelOpener = Callable[[str, int], Awaitable[Tunnel]]
"""(host, port) of the local bot → an open tunnel to it."""


def ngrok_opener(authtoken: str) -> TunnelOpener:
    async def open_ngrok(host: str, port: int) -> Tunnel:
        try:
            import ngrok  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ConfigError(
                "the ngrok package is not installed: pip install -e '.[tunnel]' (or set PUBLIC_URL to "
                "your own tunnel or host)"
            ) from None
        try:
            listener = ngrok.forward(f"{host}:{port}", authtoken=authtoken)
            if inspect.isawaitable(listener):
                listener = await listener
        except Exception as exc:  # noqa: BLE001 - the SDK raises untyped errors: say which, and stop
            raise ConfigError(f"ngrok could not open a tunnel: {exc} (check NGROK_AUTHTOKEN)") from None

        url = str(listener.url())

        async def close() -> None:
            result = ngrok.disconnect(url)  # awaitable when called from a running event loop
            if inspect.isawaitable(result):
                await result

        return Tunnel(url=url, close=close)

    return open_ngrok


async def watch(
    public_url: str, *, interval_s: float = WATCH_INTERVAL_S, on_down: Callable[[str], None]
) -> None:
    """Probes ``public_url/health`` until cancelled; calls ``on_down`` once per outage, logs recovery.

    Calls already connected are not touched: the watch only reports, the operator decides.
    """
    down = False
    async with httpx.AsyncClient(timeout=min(interval_s, 10.0)) as client:
        while True:
            try:
                ok = (await client.get(public_url + "/health")).status_code == 200
                problem = "" if ok else "the public URL answers, but not with this bot's /health"
            except httpx.HTTPError as exc:
                ok, problem = False, f"{type(exc).__name__}"
            if not ok and not down:
                log.error("tunnel_down", public_url=public_url, problem=problem)
                on_down(problem)
            elif ok and down:
                log.info("tunnel_up_again", public_url=public_url)
            down = not ok
            await asyncio.sleep(interval_s)
