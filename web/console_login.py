"""The console's login: password or start-up token, throttled per client, and the login URL printed at start.

Split from ``console_routes`` (which wires the console) so each module stays about one thing.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_429_TOO_MANY_REQUESTS

from console.auth import COOKIE_NAME
from web.console_routes import LOGIN_URL_FILE, Console, client_id

log = structlog.get_logger()


def _safe_next(target: str) -> str:
    """Only back into the console: never an absolute or scheme-relative URL (open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console") or target.startswith("//"):
        return "/console"
    return target


def _too_many(console: Console, wait_s: float, target: str) -> Response[str]:
    response = console.html(
        "login.html",
        status_code=HTTP_429_TOO_MANY_REQUESTS,
        next=target,
        error=f"Too many failed logins: try again in {int(wait_s) + 1} s.",
    )
    response.headers["Retry-After"] = str(int(wait_s) + 1)
    return response


def _logged_in(request: Request[Any, Any, Any], console: Console, target: str) -> Response[Any]:
    console.throttle.succeeded(client_id(request))
    log.info("console_login")
    secure = request.url.scheme == "https" or console.settings.public_url.startswith("https://")
    cookie = Cookie(
        key=COOKIE_NAME,
        value=console.auth.issue(),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=console.auth.ttl_s,
    )
    return Redirect(target, status_code=303, cookies=[cookie])


def _attempt(request: Request[Any, Any, Any], console: Console, secret: str, target: str) -> Response[Any]:
    """One login try, password or start-up token: throttled per client, failures logged without the try."""
    client = client_id(request)
    wait = console.throttle.retry_after(client)
    if wait > 0:
        log.warning("console_login_throttled", client=client)
        return _too_many(console, wait, target)
    if console.auth.check_password(secret):
        return _logged_in(request, console, target)
    console.throttle.failed(client)
    log.warning("console_login_failed", client=client)
    error = "Wrong password." if console.auth.password_set else "Wrong or expired login token."
    return console.html("login.html", status_code=HTTP_401_UNAUTHORIZED, next=target, error=error)


@get("/login")
async def login_page(
    request: Request[Any, Any, Any],
    console: NamedDependency[Console],
    next: FromQuery[str] = "/console",
    token: FromQuery[str] = "",
) -> Response[Any]:
    """``?token=`` is the login URL printed at start when no password is set."""
    if token:
        return _attempt(request, console, token, _safe_next(next))
    return console.html("login.html", next=_safe_next(next), error="")


@post("/login", status_code=303)
async def login(
    request: Request[Any, Any, Any],
    console: NamedDependency[Console],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    return _attempt(request, console, data.get("password", ""), _safe_next(data.get("next", "/console")))


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any], console: NamedDependency[Console]) -> Response[Any]:
    console.auth.revoke(request.cookies.get(COOKIE_NAME))
    return Redirect(
        "/console/login",
        status_code=303,
        cookies=[Cookie(key=COOKIE_NAME, value="", path="/", max_age=0)],
    )


ROUTES: list[Any] = [login_page, login, logout]


def announce_login_url(console: Console) -> None:
    """Like Jupyter: the login URL with the start-up token goes to the terminal, never into the log
    stream (which may be shipped elsewhere). It is also kept in ``DATA_DIR`` (mode 0600) for a server
    without a terminal; ``cat`` it on the machine itself."""
    url = console.login_url()
    path = console.settings.data_dir / LOGIN_URL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(url + "\n")
    if sys.stderr.isatty():
        print(
            f"\n    Console login (no CONSOLE_PASSWORD set; valid until restart):\n    {url}\n",
            file=sys.stderr,
        )
    log.warning(
        "console_login_token",
        detail=f"CONSOLE_PASSWORD is not set: log in with the URL in {path} (printed on a terminal)",
    )
