"""Runs the OpenAI and ElevenLabs fakes on one loopback port, inside the caller's event loop.

Sharing the loop with the test means no thread, no subprocess and no sleep-and-hope start-up: the context
manager returns once the socket listens, and ``behaviour`` can be changed between two requests. Port 0 lets
the OS pick a free port, so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from fakes import elevenlabs_api, elevenlabs_ws, openai_api, openai_realtime
from fakes.asgi import Exchange, Receive, Scope, Send
from fakes.behaviour import FakeBehaviour
from fakes.loopback import serve_loopback

log = structlog.get_logger()


class FakeProvidersApp:
    """The raw ASGI app: ``/v1/text-to-speech/…`` goes to ElevenLabs, any other ``/v1/…`` to OpenAI.

    WebSockets go to the OpenAI Realtime fake (``/v1/realtime``), or to ElevenLabs' input streaming
    (``/v1/text-to-speech/{voice}/stream-input``).
    """

    def __init__(self, behaviour: FakeBehaviour, *, speech: bool = True) -> None:
        self.behaviour = behaviour
        self.speech = elevenlabs_api.SpeechSource(use_espeak=speech)
        self.stopping = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith("/v1/text-to-speech/"):
            await elevenlabs_ws.handle(scope, receive, send, self.behaviour, self.speech, self.stopping)
            return
        if scope["type"] == "websocket":
            await openai_realtime.handle(scope, receive, send, self.behaviour, self.stopping)
            return
        if scope["type"] != "http":
            return
        ex = Exchange(scope, receive, send, self.stopping)
        if ex.path.startswith("/v1/text-to-speech/") or (
            ex.path == "/v1/models" and "xi-api-key" in ex.headers
        ):
            # Both APIs have ``/v1/models``; ElevenLabs' clients are the ones that send ``xi-api-key``.
            await elevenlabs_api.handle(ex, self.behaviour, self.speech)
        elif ex.path.startswith("/v1/"):
            await openai_api.handle(ex, self.behaviour)
        elif ex.path == "/health":
            await ex.respond(200, b"ok", "text/plain")
        else:
            await ex.respond(404, b"not found", "text/plain")


@dataclass(frozen=True, slots=True)
class FakeEndpoints:
    openai_base_url: str
    """Pass as ``OPENAI_BASE_URL`` / ``AsyncOpenAI(base_url=…)``; it ends in ``/v1`` like the real one."""
    elevenlabs_base_url: str
    """Pass as ``ELEVENLABS_BASE_URL`` / ``AsyncElevenLabs(base_url=…)``."""
    behaviour: FakeBehaviour
    port: int


@asynccontextmanager
async def run_fake_providers(
    behaviour: FakeBehaviour | None = None, *, host: str = "127.0.0.1", port: int = 0, speech: bool = True
) -> AsyncIterator[FakeEndpoints]:
    """Serves both fakes until the block ends; held and paced requests are cut short on exit."""
    behaviour = behaviour or FakeBehaviour()
    app = FakeProvidersApp(behaviour, speech=speech)
    async with serve_loopback(app, name="fake-providers", host=host, port=port, websockets=True) as bound:
        base = f"http://{host}:{bound}"
        log.debug("fake_providers_started", url=base)
        try:
            yield FakeEndpoints(f"{base}/v1", base, behaviour, bound)
        finally:
            app.stopping.set()  # cut held and paced requests short, so the server can stop at once


async def serve_forever(host: str, port: int, behaviour: FakeBehaviour | None = None) -> None:
    """For ``voicebot fakes``: runs until cancelled (Ctrl-C)."""
    async with run_fake_providers(behaviour, host=host, port=port) as endpoints:
        log.info(
            "fake_providers_listening",
            openai_base_url=endpoints.openai_base_url,
            elevenlabs_base_url=endpoints.elevenlabs_base_url,
        )
        await asyncio.Event().wait()
