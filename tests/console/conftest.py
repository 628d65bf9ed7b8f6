"""Synthetic calls for the console tests: the events a call session publishes, without a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from dialogue.events import (
    BotSentence,
    CallEnded,
    CallEvent,
    CallStarted,
    ProtocolEvent,
    SpeechActivity,
    StateChanged,
    TranscriptEvent,
    TurnLatency,
)
from web.app import create_app
from web.console_routes import CSRF_COOKIE, CSRF_HEADER, Console
from web.settings import Settings

PASSWORD = "correct horse battery staple"
TEST_BASE_URL = "http://127.0.0.1:8000"
"""A host the allowed-hosts check accepts by default (the test client's own, testserver.local, is not)."""


def call_events(call_sid: str, t0: float = 1_700_000_000.0, *, ended: bool = True) -> list[CallEvent]:
    """A short call: greeting, one caller turn, an answer the caller cuts off, hang-up."""
    e: list[CallEvent] = [
        CallStarted(call_sid=call_sid, at=t0, stream_sid="MZ1", caller="+49 *** ***123", transport="twilio"),
        BotSentence(call_sid=call_sid, at=t0 + 0.1, text="Guten Tag, hier ist der Kundendienst.", turn=0),
        TranscriptEvent(
            call_sid=call_sid, at=t0 + 2.0, role="bot", text="Guten Tag, hier ist der Kundendienst."
        ),
        ProtocolEvent(call_sid=call_sid, at=t0 + 2.1, name="mark", detail="greeting-0"),
        StateChanged(
            call_sid=call_sid, at=t0 + 2.1, source="greeting", dest="listening", trigger="greeting_done"
        ),
        SpeechActivity(call_sid=call_sid, at=t0 + 2.5, speaking=True),
        SpeechActivity(call_sid=call_sid, at=t0 + 4.0, speaking=False),
        StateChanged(
            call_sid=call_sid, at=t0 + 4.6, source="listening", dest="transcribing", trigger="speech_ended"
        ),
        TranscriptEvent(
            call_sid=call_sid, at=t0 + 4.9, role="caller", text="Wann haben Sie geöffnet?", turn=1
        ),
        StateChanged(
            call_sid=call_sid, at=t0 + 4.9, source="transcribing", dest="thinking", trigger="transcript_ready"
        ),
        StateChanged(
            call_sid=call_sid, at=t0 + 5.3, source="thinking", dest="speaking", trigger="reply_started"
        ),
        BotSentence(call_sid=call_sid, at=t0 + 5.3, text="Wir haben montags bis freitags", turn=1),
        TurnLatency(
            call_sid=call_sid,
            at=t0 + 5.4,
            turn=1,
            transcript_ms=300.0,
            llm_first_token_ms=450.0,
            first_sentence_ms=520.0,
            tts_first_byte_ms=640.0,
            first_audio_ms=700.0,
        ),
        StateChanged(
            call_sid=call_sid, at=t0 + 6.0, source="speaking", dest="barge_in", trigger="speech_started"
        ),
        ProtocolEvent(call_sid=call_sid, at=t0 + 6.3, name="clear", detail="barge-in"),
        TranscriptEvent(
            call_sid=call_sid,
            at=t0 + 6.3,
            role="bot",
            text="Wir haben montags",
            cut="bis freitags geöffnet.",
            turn=1,
            interrupted=True,
        ),
        StateChanged(
            call_sid=call_sid, at=t0 + 6.3, source="barge_in", dest="listening", trigger="barge_in_confirmed"
        ),
    ]
    if ended:
        e += [
            StateChanged(call_sid=call_sid, at=t0 + 8.0, source="listening", dest="hangup", trigger="hangup"),
            CallEnded(call_sid=call_sid, at=t0 + 8.0, reason="caller_hangup", duration_s=8.0),
        ]
    return e


def console_client(settings: Settings) -> TestClient[object]:
    """Redirects are what the login tests look at, so they are not followed. The host is one the
    allowed-hosts check accepts by default."""
    client: TestClient[object] = TestClient(app=create_app(settings), base_url=TEST_BASE_URL)
    client.follow_redirects = False
    return client


def publish_on_app_loop(client: TestClient[object], events: list[CallEvent]) -> None:
    """Publishes as a call session does: on the app's own loop, then waits until the console's hub has
    folded every event into its view and the store has written them.

    Publishing from the test's thread instead raced the app's loop: asyncio queues and events are not
    thread-safe, and a wake-up lost that way left Litestar's channels waiting at shutdown for an event
    its publisher never picked up. The wait is on the hub's own watcher, not on a clock.
    """
    sink = client.app.state.ctx.sink
    console = console_of(client)

    async def publish_and_wait() -> None:
        with console.hub.watch(events[0].call_sid) as watcher:
            for event in events:
                sink.publish(event)
            wanted = sum(1 for e in events if watcher.wants(e))
            seen = 0
            while seen + watcher.dropped < wanted:
                seen += len(await watcher.next_batch())
        await console.store.flush()

    client.blocking_portal.call(publish_and_wait)


def with_csrf(client: TestClient[object]) -> str:
    """Fetches the login page once for the CSRF cookie and sends its token with every later request."""
    if CSRF_COOKIE not in client.cookies:
        assert client.get("/console/login").status_code == 200
    token = str(client.cookies[CSRF_COOKIE])
    client.headers[CSRF_HEADER] = token
    return token


async def log_in_async(web: Any, password: str = PASSWORD) -> Any:
    """The same for an ``httpx.AsyncClient`` against a running server."""
    assert (await web.get("/console/login")).status_code == 200
    web.headers[CSRF_HEADER] = web.cookies[CSRF_COOKIE]
    return await web.post("/console/login", data={"password": password})


def log_in(client: TestClient[object], password: str = PASSWORD, next: str = "/console") -> Any:
    with_csrf(client)
    return client.post("/console/login", data={"password": password, "next": next})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(stt_provider="none", data_dir=tmp_path, console_password=PASSWORD)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[object]]:
    """Logged in."""
    with console_client(settings) as c:
        resp = log_in(c)
        assert resp.status_code == 303
        yield c


def console_of(client: TestClient[object]) -> Console:
    console = client.app.state.ctx.extras[Console.EXTRAS_KEY]
    assert isinstance(console, Console)
    return console
