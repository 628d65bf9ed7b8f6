"""Wires the developer console into the app: channels plugin, hub, call store, routes, login and guard.

``create_app`` calls ``console_wiring(ctx)`` once and passes the pieces to ``Litestar``; everything the
console needs is built here from the settings, so the console package itself reads no environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import structlog
from litestar import Request, Response, Router
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.enums import MediaType, ScopeType
from litestar.exceptions import HTTPException, WebSocketException
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_401_UNAUTHORIZED
from litestar.utils.scope.state import ScopeState

from console.auth import COOKIE_NAME, Access, ConsoleAuth, LoginThrottle
from console.hub import CHANNEL, EventHub
from console.render import STATIC, Renderer
from console.store import CallStore
from media.errors import ConfigError
from web.context import NOTE_CALLER, AppContext
from web.keys import instance_secret
from web.privacy_sinks import DigitMaskingSink
from web.settings import WILDCARD_HOSTS, Settings

log = structlog.get_logger()

SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'"
        ),
    ),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cache-Control", value="no-store"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
]


CSRF_COOKIE = "voicebot_csrf"
CSRF_HEADER = "x-csrftoken"
_CSRF: ContextVar[str] = ContextVar("console_csrf", default="")
"""The CSRF token of the request being rendered; pages put it in forms and in htmx's headers."""
LOGIN_URL_FILE = "console-login-url"


def recordings_dir(settings: Settings) -> Path:
    """Where sessions write recordings (``media.recording.recording_path``) and the console reads them."""
    return settings.data_dir / "recordings"


@dataclass(slots=True)
class Console:
    """The console's collaborators, shared by its routes (injected as ``console``)."""

    hub: EventHub
    store: CallStore
    auth: ConsoleAuth
    renderer: Renderer
    recordings: Path
    settings: Settings
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    EXTRAS_KEY: ClassVar[str] = "console"

    def html(self, template: str, status_code: int = 200, **context: Any) -> Response[str]:
        page = self.renderer.page(
            template, password_set=self.auth.password_set, now=time.time(), csrf_token=_CSRF.get(), **context
        )
        return Response(page, media_type=MediaType.HTML, status_code=status_code)

    def login_url(self) -> str:
        """Where a developer logs in with the start-up token (no password set)."""
        base = self.settings.public_url
        if not base:
            host = "127.0.0.1" if self.settings.host in WILDCARD_HOSTS else self.settings.host
            base = f"http://{host}:{self.settings.port}"
        return f"{base}/console/login?token={quote(self.auth.access_token)}"


@dataclass(slots=True)
class ConsoleWiring:
    console: Console
    route_handlers: list[Any]
    plugins: list[Any]
    csrf: CSRFConfig
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class ConsoleAccessDenied(HTTPException):
    def __init__(self, access: Access) -> None:
        super().__init__(status_code=HTTP_401_UNAUTHORIZED, detail=str(access))
        self.access = access


def console_access(connection: ASGIConnection[Any, Any, Any, Any]) -> Access:
    console: Console | None = connection.app.state.ctx.extras.get(Console.EXTRAS_KEY)
    if console is None:
        return Access.LOGIN_REQUIRED
    return console.auth.access(token=connection.cookies.get(COOKIE_NAME))


def require_console_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guards every console page, stream, download and socket; a WebSocket is refused before accept."""
    access = console_access(connection)
    if access is Access.ALLOWED:
        return
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        raise WebSocketException(detail=str(access), code=4401)
    raise ConsoleAccessDenied(access)


async def remember_csrf(request: Request[Any, Any, Any]) -> None:
    """Before each console handler: the token the CSRF middleware issued or accepted, for the templates."""
    token = ScopeState.from_scope(request.scope).csrf_token
    _CSRF.set(token if isinstance(token, str) else "")


def client_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The peer address; forwarded headers are not trusted (anyone can send them)."""
    return connection.client.host if connection.client else "unknown"


def _on_denied(request: Request[Any, Any, Any], exc: ConsoleAccessDenied) -> Response[Any]:
    """A page asks for a login; an SSE stream or a script gets a bare status it can act on."""
    wants_page = "text/html" in request.headers.get("accept", "") and request.method == "GET"
    if wants_page:
        return Redirect(f"/console/login?next={quote(request.url.path)}", status_code=303)
    return Response("login required", status_code=HTTP_401_UNAUTHORIZED, media_type=MediaType.TEXT)


def channels_backend(settings: Settings) -> ChannelsBackend:
    """Memory in one process; Redis pub/sub when several instances must see each other's calls."""
    if not settings.redis_url:
        return MemoryChannelsBackend()
    try:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(
            "REDIS_URL is set but the redis client is missing: pip install 'voicebot[redis]'"
        ) from None
    from web.fleet import STATE_ERRORS

    class ForgivingRedisBackend(RedisChannelsPubSubBackend):
        """Litestar's publish worker dies on the first failed publish, and then its shutdown waits for
        the queue forever: with Redis away for a moment, an event the consoles miss is dropped instead."""

        dropped = 0

        async def publish(self, data: bytes, channels: Iterable[str]) -> None:
            try:
                await super().publish(data, channels)
            except STATE_ERRORS:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("console_event_not_published", dropped=self.dropped)

    return ForgivingRedisBackend(redis=Redis.from_url(settings.redis_url))


def console_wiring(ctx: AppContext) -> ConsoleWiring:
    from web import console_login, console_pages, console_phone, console_sse
    from web.calls import TwilioEdge
    from web.retention import purge_forever

    settings = ctx.settings
    backend = channels_backend(settings)
    channels = ChannelsPlugin(backend=backend, channels=[CHANNEL])
    secret = instance_secret(settings)
    fleet = TwilioEdge.of(ctx).fleet
    console = Console(
        hub=EventHub(channels),
        store=CallStore(settings.effective_database_url, caller_key=secret, instance=fleet.instance),
        auth=ConsoleAuth(settings.console_password.get_secret_value(), secret_key=secret),
        renderer=Renderer(),
        recordings=recordings_dir(settings),
        settings=settings,
    )
    ctx.extras[Console.EXTRAS_KEY] = console
    ctx.extras[NOTE_CALLER] = console.store.note_caller
    if settings.console_mask_digits:
        ctx.add_sink(DigitMaskingSink(console.hub))
        ctx.add_sink(DigitMaskingSink(console.store))
    else:
        ctx.add_sink(console.hub)
        ctx.add_sink(console.store)
    provide = {"console": Provide(lambda: console, sync_to_thread=False, use_cache=True)}
    guarded = Router(
        path="/console",
        route_handlers=[*console_pages.ROUTES, *console_sse.ROUTES, *console_phone.ROUTES],
        guards=[require_console_login],
        before_request=remember_csrf,
        dependencies=provide,
        exception_handlers={ConsoleAccessDenied: _on_denied},
        response_headers=SECURITY_HEADERS,
        signature_namespace={"Console": Console},
    )
    open_routes = Router(
        path="/console",
        route_handlers=console_login.ROUTES,
        before_request=remember_csrf,
        dependencies=provide,
        response_headers=SECURITY_HEADERS,
        signature_namespace={"Console": Console},
    )
    static = create_static_files_router(path="/console/static", directories=[STATIC], include_in_schema=False)

    background: list[asyncio.Task[None]] = []

    async def start() -> None:
        await console.store.start()
        # After the fleet joined (lifespan first): calls of instances that stopped beating were lost.
        await console.store.mark_lost(await fleet.alive_instances(), now=time.time())
        await console.hub.start()
        background.append(
            asyncio.create_task(
                purge_forever(settings, console.store, live=console.hub.live), name="retention"
            )
        )
        if not console.auth.password_set:
            console_login.announce_login_url(console)

    async def stop() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await console.hub.stop()
        await console.store.aclose()
        redis = getattr(backend, "_redis", None)  # the plugin closes its pub/sub, not the client's pool
        if redis is not None:
            await redis.aclose()

    csrf = CSRFConfig(
        secret=hmac_hex(secret, "csrf"),
        cookie_name=CSRF_COOKIE,
        cookie_path="/console",
        header_name=CSRF_HEADER,
        cookie_secure=settings.public_url.startswith("https://"),
        cookie_httponly=True,
        cookie_samesite="strict",
        # Twilio signs its webhooks; they carry no browser cookies, so only the console is CSRF-checked
        exclude=["^/(?!console(/|$))."],
    )
    return ConsoleWiring(console, [guarded, open_routes, static], [channels], csrf, [start], [stop])


def hmac_hex(key: bytes, purpose: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()
