"""The Litestar app factory: takes its collaborators, reads no settings of its own."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar

from web import health
from web.context import AppContext, SessionFactory
from web.providers import Providers, build_providers
from web.settings import Settings

log = structlog.get_logger()


def create_app(
    settings: Settings,
    providers: Providers | None = None,
    *,
    session_factory: SessionFactory | None = None,
) -> Litestar:
    """``session_factory`` replaces the real call session (tests of the Twilio edge alone use a recorder)."""
    ctx = AppContext(
        settings=settings,
        providers=providers or build_providers(settings),
        session_factory=session_factory,
    )

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
        try:
            yield
        finally:
            await ctx.providers.aclose()
            log.info("bot_stopped")

    route_handlers: list[Any] = [*health.ROUTES]
    app = Litestar(route_handlers=route_handlers, lifespan=[lifespan], debug=False)
    app.state.ctx = ctx
    return app
