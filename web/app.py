"""The Litestar app factory: takes its collaborators, reads no settings of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar
from litestar.logging.config import LoggingConfig

from media.errors import ConfigError
from web import health, media_ws, metrics, twilio_routes
from web.calls import TwilioEdge
from web.console_routes import console_wiring
from web.context import AppContext, SessionFactory
from web.drain import Drain
from web.hosts import HostCheck, allowed_hosts, host_check_middleware
from web.metrics import install_metrics
from web.providers import Providers, build_providers
from web.sessions import real_session_factory
from web.settings import Settings
from web.tracing import install_tracing

log = structlog.get_logger()


def create_app(
    settings: Settings,
    providers: Providers | None = None,
    *,
    session_factory: SessionFactory | None = None,
) -> Litestar:
    """``session_factory`` replaces the real call session (tests of the Twilio edge alone use a recorder)."""
    refuse_unsigned_exposure(settings)
    ctx = AppContext(
        settings=settings,
        providers=providers or build_providers(settings),
        session_factory=session_factory,
    )
    if ctx.session_factory is None and ctx.providers.ready:
        ctx.session_factory = real_session_factory(ctx)
    edge = TwilioEdge.from_settings(settings)
    edge.install(ctx)
    ctx.extras[Drain.EXTRAS_KEY] = Drain(settings.drain_timeout_s, edge.registry.handlers)
    console = console_wiring(ctx)
    meter = install_metrics(ctx)
    tracing = install_tracing(ctx, edge.fleet.instance)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        log.info("bot_starting", providers=ctx.providers.describe(), public_url=settings.public_url or None)
        for note in ctx.providers.missing:
            log.warning("provider_missing", detail=note)
        if not settings.signatures_enabled:
            log.warning(
                "twilio_signatures_disabled",
                detail="TWILIO_AUTH_TOKEN is not set: anyone who finds this server can drive it",
            )
        await edge.fleet.start()
        await meter.start()
        ctx.providers.start_loading()
        warming = asyncio.create_task(ctx.providers.warm_phrases(), name="warm_phrases")
        try:
            yield
        finally:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
            await meter.stop()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # flushes the last spans
            await ctx.providers.aclose()
            await edge.aclose()
            log.info("bot_stopped")

    route_handlers: list[Any] = [*health.ROUTES, *twilio_routes.ROUTES, *media_ws.ROUTES, *metrics.ROUTES]
    route_handlers += console.route_handlers
    app = Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        plugins=console.plugins,
        on_startup=console.on_startup,
        on_shutdown=console.on_shutdown,
        debug=False,
        middleware=[host_check_middleware(HostCheck(allowed_hosts(settings)))],
        csrf_config=console.csrf,
        request_max_body_size=1 << 20,
        # Logging is ours (``configure_logging``): Litestar's default would set the root logger to INFO
        # with a queue-listener thread, letting every HTTP client request line through unmasked.
        logging_config=LoggingConfig(
            configure_root_logger=False,
            # Litestar re-adds these two names when missing; as null handlers they start no thread.
            handlers={name: {"class": "logging.NullHandler"} for name in ("console", "queue_listener")},
            loggers={"litestar": {"level": "WARNING", "propagate": True}},
        ),
    )
    app.state.ctx = ctx
    return app


def refuse_unsigned_exposure(settings: Settings) -> None:
    """Refuses at start, not at the first call: an operator sees the error at once, and no caller
    ever meets a bot that anyone on the network could also drive."""
    if settings.signatures_enabled or settings.host_is_loopback or settings.allow_unsigned:
        return
    raise ConfigError(
        f"HOST={settings.host} is reachable from other machines but TWILIO_AUTH_TOKEN is not set: "
        "anyone could place calls, inject audio and read what the bot says. "
        "Set TWILIO_AUTH_TOKEN, bind HOST=127.0.0.1, or set ALLOW_UNSIGNED=1 if you accept that"
    )
