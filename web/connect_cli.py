"""The ``voicebot connect`` command: serve the bot, open a tunnel (or use PUBLIC_URL), point the number at it.

The tunnel must exist before the app is built: signatures are checked over URLs rebuilt from PUBLIC_URL,
so the bot has to know its public address from the start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import click
import uvicorn

from media.errors import ConfigError
from web.app import create_app
from web.connect import ConnectReport, connect_number
from web.media_protocol import MediaSocketProtocol
from web.settings import Settings
from web.tunnel import Tunnel, TunnelOpener, ngrok_opener, watch
from web.twilio_numbers import TwilioSetupError


async def serve_connected(
    settings: Settings,
    *,
    force: bool = False,
    open_tunnel: TunnelOpener | None = None,
    say: Callable[[str], None] = click.echo,
    watch_interval_s: float = 30.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Runs the bot until ``stop`` is set (or the server exits); returns the process exit code."""
    tunnel: Tunnel | None = None
    if not settings.public_url:
        token = settings.ngrok_authtoken.get_secret_value()
        if open_tunnel is None and not token:
            say(
                "error: set NGROK_AUTHTOKEN (ngrok dashboard) for a tunnel, or PUBLIC_URL to your own address"
            )
            return 2
        tunnel = await (open_tunnel or ngrok_opener(token))(settings.host, settings.port)
        settings = settings.model_copy(update={"public_url": tunnel.url.rstrip("/")})
        say(f"tunnel: {settings.public_url} -> http://{settings.host}:{settings.port}")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            ws=MediaSocketProtocol,
            ws_max_size=1 << 20,
            ws_per_message_deflate=False,
        )
    )
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    watcher: asyncio.Task[None] | None = None
    try:
        while not server.started:  # uvicorn offers no event for this; one pass per check
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        try:
            report = await connect_number(settings, settings.public_url, force=force)
        except TwilioSetupError as exc:
            say(f"error: {exc.detail}")
            return 1
        _print(report, say)

        def down(problem: str) -> None:
            say(
                f"WARNING: the tunnel {settings.public_url} is down ({problem}): new calls cannot reach the "
                "bot; calls already connected go on. Restart `voicebot connect`."
            )

        watcher = asyncio.create_task(watch(settings.public_url, interval_s=watch_interval_s, on_down=down))
        waiters: list[asyncio.Future[Any]] = [serving]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return 0
    finally:
        if watcher is not None:
            watcher.cancel()
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        if tunnel is not None:
            await tunnel.close()


def _print(report: ConnectReport, say: Callable[[str], None]) -> None:
    if report.changed:
        for line in report.changed:
            say(f"changed: {line}")
    else:
        say(f"unchanged: {report.phone_number} already sends its calls to {report.voice_url}")
    say(f"checked: {report.test}")
    say(f"Call {report.phone_number} now to talk to the bot.")


async def connect_only(settings: Settings, *, force: bool, say: Callable[[str], None] = click.echo) -> int:
    """For a bot that already runs behind PUBLIC_URL (a host, a proxy, your own tunnel): point and test."""
    if not settings.public_url:
        say("error: --no-serve needs PUBLIC_URL: the address where the running bot is reached")
        return 2
    try:
        report = await connect_number(settings, settings.public_url, force=force)
    except TwilioSetupError as exc:
        say(f"error: {exc.detail}")
        return 1
    _print(report, say)
    return 0


def run(settings: Settings, force: bool, serve: bool = True) -> int:
    try:
        if not serve:
            return asyncio.run(connect_only(settings, force=force))
        return asyncio.run(serve_connected(settings, force=force))
    except ConfigError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        return 2
    except KeyboardInterrupt:
        return 0
