"""Wires the developer console into the app: channels plugin, hub, call store, routes, login and guard.

``create_app`` calls ``console_wiring(ctx)`` once and passes the pieces to ``Litestar``; everything the
console needs is built here from the settings, so the console package itself reads no environment.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import quote, urlsplit

import structlog
from litestar import Request, Response, Router, get, post
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, RequestEncodingType, ScopeType
from litestar.exceptions import HTTPException, WebSocketException
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, FromQuery
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN

from console.auth import COOKIE_NAME, Access, ConsoleAuth
from console.hub import CHANNEL, EventHub
from console.render import STATIC, Renderer
from console.store import CallStore
from media.errors import ConfigError
from web.context import AppContext
from web.settings import Settings

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

    EXTRAS_KEY: ClassVar[str] = "console"

    def html(self, template: str, status_code: int = 200, **context: Any) -> Response[str]:
        page = self.renderer.page(template, password_set=self.auth.password_set, now=time.time(), **context)
        return Response(page, media_type=MediaType.HTML, status_code=status_code)


@dataclass(slots=True)
class ConsoleWiring:
    console: Console
    route_handlers: list[Any]
    plugins: list[Any]
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class ConsoleAccessDenied(HTTPException):
    def __init__(self, access: Access) -> None:
        status = HTTP_401_UNAUTHORIZED if access is Access.LOGIN_REQUIRED else HTTP_403_FORBIDDEN
        super().__init__(status_code=status, detail=str(access))
        self.access = access


def console_access(connection: ASGIConnection[Any, Any, Any, Any]) -> Access:
    console: Console = connection.app.state.ctx.extras[Console.EXTRAS_KEY]
    client = connection.client.host if connection.client else None
    return console.auth.access(
        token=connection.cookies.get(COOKIE_NAME), client_host=client, headers=connection.headers
    )


def require_console_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guards every console page, stream and socket; a WebSocket is refused before it is accepted."""
    access = console_access(connection)
    if access is Access.ALLOWED:
        return
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        raise WebSocketException(detail=str(access), code=4401 if access is Access.LOGIN_REQUIRED else 4403)
    raise ConsoleAccessDenied(access)


def _on_denied(request: Request[Any, Any, Any], exc: ConsoleAccessDenied) -> Response[Any]:
    """A page asks for a login; an SSE stream or a script gets a bare status it can act on."""
    console: Console = request.app.state.ctx.extras[Console.EXTRAS_KEY]
    wants_page = "text/html" in request.headers.get("accept", "") and request.method == "GET"
    if exc.access is Access.LOGIN_REQUIRED:
        if wants_page:
            return Redirect(f"/console/login?next={quote(request.url.path)}", status_code=303)
        return Response("login required", status_code=HTTP_401_UNAUTHORIZED, media_type=MediaType.TEXT)
    if wants_page:
        return console.html("denied.html", status_code=HTTP_403_FORBIDDEN)
    return Response("console is local-only", status_code=HTTP_403_FORBIDDEN, media_type=MediaType.TEXT)


def _safe_next(target: str) -> str:
    """Only back into the console: never an absolute or scheme-relative URL (open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console") or target.startswith("//"):
        return "/console"
    return target


@get("/login", sync_to_thread=False)
def login_page(console: NamedDependency[Console], next: FromQuery[str] = "/console") -> Response[str]:
    return console.html("login.html", next=_safe_next(next), error="")


@post("/login", status_code=303)
async def login(
    request: Request[Any, Any, Any],
    console: NamedDependency[Console],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    target = _safe_next(data.get("next", "/console"))
    if not console.auth.check_password(data.get("password", "")):
        log.warning("console_login_failed", client=request.client.host if request.client else None)
        return console.html(
            "login.html", status_code=HTTP_401_UNAUTHORIZED, next=target, error="Wrong password."
        )
    log.info("console_login")
    cookie = Cookie(
        key=COOKIE_NAME,
        value=console.auth.issue(),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=console.auth.ttl_s,
    )
    return Redirect(target, status_code=303, cookies=[cookie])


@post("/logout", status_code=303, sync_to_thread=False)
def logout() -> Response[Any]:
    return Redirect(
        "/console/login",
        status_code=303,
        cookies=[Cookie(key=COOKIE_NAME, value="", path="/console", max_age=0)],
    )


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
    return RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url))


def console_wiring(ctx: AppContext) -> ConsoleWiring:
    from web import console_pages, console_phone, console_sse

    settings = ctx.settings
    channels = ChannelsPlugin(backend=channels_backend(settings), channels=[CHANNEL])
    console = Console(
        hub=EventHub(channels),
        store=CallStore(settings.effective_database_url),
        auth=ConsoleAuth(settings.console_password.get_secret_value()),
        renderer=Renderer(),
        recordings=recordings_dir(settings),
        settings=settings,
    )
    ctx.extras[Console.EXTRAS_KEY] = console
    ctx.add_sink(console.hub)
    ctx.add_sink(console.store)
    provide = {"console": Provide(lambda: console, sync_to_thread=False, use_cache=True)}
    guarded = Router(
        path="/console",
        route_handlers=[*console_pages.ROUTES, *console_sse.ROUTES, *console_phone.ROUTES],
        guards=[require_console_login],
        dependencies=provide,
        exception_handlers={ConsoleAccessDenied: _on_denied},
        response_headers=SECURITY_HEADERS,
        signature_namespace={"Console": Console},
    )
    open_routes = Router(
        path="/console",
        route_handlers=[login_page, login, logout],
        dependencies=provide,
        response_headers=SECURITY_HEADERS,
        signature_namespace={"Console": Console},
    )
    static = create_static_files_router(path="/console/static", directories=[STATIC], include_in_schema=False)

    async def start() -> None:
        await console.store.start()
        await console.hub.start()
        if not console.auth.password_set:
            log.warning(
                "console_local_only", detail="CONSOLE_PASSWORD is not set: /console answers loopback only"
            )

    async def stop() -> None:
        await console.hub.stop()
        await console.store.aclose()

    return ConsoleWiring(console, [guarded, open_routes, static], [channels], [start], [stop])
