"""Calling the bot from the browser: the page plays Twilio's part of the Media Streams protocol.

The browser asks for a one-time stream token (the same kind ``/voice`` puts into Twilio's TwiML), opens
``WS /console/phone`` and speaks exactly what Twilio speaks: ``connected``, ``start`` with the token and
``transport=browser`` as custom parameters, 20 ms ``media`` frames of 8 kHz μ-law, ``mark`` echoes and
``stop``. The socket is handed to the very ``MediaStream`` reader that serves ``/media``, so the call
session cannot tell the two apart, apart from ``StreamStart.transport``, which this route sets itself
(the server knows which door a call came in by; it does not take the browser's word for it). Call control
differs too: there is no Twilio call to update, so the bot hangs up by closing the socket.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from litestar import Request, WebSocket, post, websocket
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import FromPath
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_503_SERVICE_UNAVAILABLE

from media.transport import CallControl, CallTransport, StreamHandler, StreamStart
from web.calls import TwilioEdge
from web.console_routes import Console
from web.context import AppContext, SessionFactory
from web.media_ws import POLICY_VIOLATION, MediaStream

log = structlog.get_logger()

BROWSER_CALL_SID: Final = re.compile(r"^BR[0-9a-f]{32}$")
"""The page issues ``BR`` + 32 hex: shaped like a Twilio SID, never mistaken for one."""


class _BrowserCall:
    """Passes everything through to the session; only marks the start as coming from the browser."""

    def __init__(self, inner: StreamHandler) -> None:
        self._inner = inner
        self.on_audio = inner.on_audio  # 50 calls a second: no extra frame in between
        self.on_dtmf = inner.on_dtmf
        self.on_mark = inner.on_mark
        self.on_stop = inner.on_stop

    async def on_start(self, start: StreamStart) -> None:
        await self._inner.on_start(dataclasses.replace(start, transport="browser"))


def _browser_factory(factory: SessionFactory) -> SessionFactory:
    def build(transport: CallTransport, control: CallControl, start: StreamStart) -> StreamHandler:
        return _BrowserCall(factory(transport, control, dataclasses.replace(start, transport="browser")))

    return build


def same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Cross-site WebSocket hijacking guard: a browser always sends Origin on a WebSocket or a POST."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not a browser (a test client or a tool holding the cookie)
    return urlsplit(origin).netloc == connection.headers.get("host", "")


def cannot_take_calls(ctx: AppContext) -> str:
    """Why no call can be held, and the one thing to do about it."""
    missing = [role for role, name in ctx.providers.describe().items() if name == "missing"]
    notes = "; ".join(ctx.providers.missing) or "no call session is wired"
    roles = ", ".join(missing) or "a provider"
    return (
        f"The bot cannot take calls: no {roles}. {notes}. "
        "Run `voicebot check` for the details, fix .env and restart `voicebot serve`."
    )


@post("/browser-call/{call_sid:str}/token", status_code=200)
async def browser_call_token(
    request: Request[Any, Any, Any], console: NamedDependency[Console], call_sid: FromPath[str]
) -> dict[str, str]:
    if not same_origin(request):
        raise PermissionDeniedException("cross-origin request")
    if not BROWSER_CALL_SID.match(call_sid):
        raise HTTPException(status_code=400, detail="not a browser call id")
    ctx: AppContext = request.app.state.ctx
    if ctx.session_factory is None:
        # Said before the microphone opens, in words the person at the page can act on.
        raise HTTPException(status_code=HTTP_503_SERVICE_UNAVAILABLE, detail=cannot_take_calls(ctx))
    edge = TwilioEdge.of(ctx)
    if edge.registry.get(call_sid) is not None or console.hub.live.get(call_sid) is not None:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail="this call id was used: reload the page")
    return {"token": edge.tokens.issue(call_sid), "accountSid": "AC" + "0" * 32}


@websocket("/phone")
async def phone(socket: WebSocket[Any, Any, Any]) -> None:
    """Guarded by the console login like every console route; refused before accept when cross-site."""
    if not same_origin(socket):
        log.warning("console_phone_cross_origin")
        await socket.close(code=POLICY_VIOLATION)
        return
    ctx: AppContext = socket.app.state.ctx
    edge = dataclasses.replace(TwilioEdge.of(ctx), rest=None)  # hang-up closes this socket
    if ctx.session_factory is not None:
        ctx = dataclasses.replace(ctx, session_factory=_browser_factory(ctx.session_factory))
    log.info("console_phone_connected")
    await MediaStream(ctx, edge, socket).serve()


ROUTES: list[Any] = [browser_call_token, phone]
