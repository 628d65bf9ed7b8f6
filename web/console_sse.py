"""Server-sent events for the console pages: re-rendered sections, swapped in by htmx's SSE extension.

Each stream first sends a full snapshot (what changed between page load and connect, or during a
reconnect, is not lost), then the sections touched by each batch of events. State changes are sent one by
one, so a watcher sees every state a call passes through even when several arrive together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, Final

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from console.render import CALL_SECTIONS
from console.views import CallView
from dialogue.events import CallEnded, CallEvent, StateChanged
from web.console_pages import call_history
from web.console_routes import Console

KEEPALIVE_S: Final = 15.0
TICK_S: Final = 1.0
"""While a call is live its duration ticks; the tick also re-renders the speech timeline."""
LIST_COALESCE_S: Final = 0.2
"""The calls list changes with every event of every call; redrawing it five times a second is plenty."""

_SECTIONS_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    "call_started": CALL_SECTIONS,
    "state_changed": ("summary", "transitions"),
    "transcript": ("summary", "transcript"),
    "bot_sentence": ("transcript",),
    "latency": ("summary", "latency"),
    "speech": ("speech",),
    "protocol": ("protocol",),
    "turn_decision": ("protocol",),
    "error": ("protocol",),
    "call_ended": (*CALL_SECTIONS, "downloads"),
}


def _section(
    console: NamedDependency[Console], name: str, view: CallView, now: float, state: str | None = None
) -> str:
    if name == "state":
        return console.renderer.fragment("_call.html", "state", view, state or view.state)
    if name in ("summary", "speech"):
        return console.renderer.fragment("_call.html", name, view, now)
    return console.renderer.fragment("_call.html", name, view)


def _message(event: str, data: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=data)


async def call_stream(
    console: NamedDependency[Console], call_sid: FromPath[str]
) -> AsyncGenerator[ServerSentEventMessage, None]:
    with console.hub.watch(call_sid) as watcher:
        view = console.hub.live.get(call_sid)
        if view is not None:
            now = time.time()
            for name in (*CALL_SECTIONS, "downloads"):
                yield _message(name, _section(console, name, view, now))
        while view is None or view.live:
            batch = await watcher.next_batch(TICK_S if view is not None else KEEPALIVE_S)
            view = console.hub.live.get(call_sid)
            if view is None:
                yield ServerSentEventMessage(comment="waiting for the call to start")
                continue
            now = time.time()
            sections: dict[str, None] = {}
            for event in batch:
                if isinstance(event, StateChanged):
                    yield _message("state", _section(console, "state", view, now, event.dest))
                sections.update(dict.fromkeys(_SECTIONS_BY_KIND.get(event.kind, ())))
            if not batch:
                sections.update(dict.fromkeys(("summary", "speech")))
            for name in sections:
                yield _message(name, _section(console, name, view, now))
        yield _message("ended", "")


async def calls_stream(console: Console) -> AsyncGenerator[ServerSentEventMessage, None]:
    def live_table() -> ServerSentEventMessage:
        calls = console.hub.live.live()
        return _message("live", console.renderer.fragment("_calls.html", "live_table", calls, time.time()))

    async def history() -> ServerSentEventMessage:
        rows = await call_history(console)
        return _message("history", console.renderer.fragment("_calls.html", "history_table", rows))

    with console.hub.watch(None) as watcher:
        yield live_table()
        yield await history()
        while True:
            ticking = bool(console.hub.live.live())
            batch: list[CallEvent] = await watcher.next_batch(TICK_S if ticking else KEEPALIVE_S)
            if batch:
                await asyncio.sleep(LIST_COALESCE_S)
                batch += await watcher.next_batch(0)
            if batch or ticking:
                yield live_table()
            else:
                yield ServerSentEventMessage(comment="keep-alive")
            if any(isinstance(e, CallEnded) for e in batch):
                yield await history()


@get("/events")
async def calls_events(console: NamedDependency[Console]) -> ServerSentEvent:
    return ServerSentEvent(calls_stream(console))


@get("/calls/{call_sid:str}/events")
async def call_events(console: NamedDependency[Console], call_sid: FromPath[str]) -> ServerSentEvent:
    return ServerSentEvent(call_stream(console, call_sid))


ROUTES: list[Any] = [calls_events, call_events]
