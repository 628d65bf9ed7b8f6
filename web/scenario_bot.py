"""A bot for scenarios, in this process: production code on loopback fakes, its events in view.

The scenario runner, the pytest plugin and the tests of both start the bot here. Only the providers are
swapped: the OpenAI transcription fake answers with the words of the caller's clips (so the sentence a
tester wrote is what the bot "hears"), the scripted FAQ dialogue answers from the business profile, the
ElevenLabs fake speaks, and a Twilio REST fake takes hang-ups and transfers.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogue.events import CallEvent
from fakes.behaviour import FakeBehaviour
from fakes.loopback import serve_loopback
from fakes.server import FakeEndpoints, run_fake_providers
from fakes.twilio_rest import TwilioRestFake
from web.app import create_app
from web.settings import Settings

PUBLIC_URL = "https://bot.scenarios.test"
AUTH_TOKEN = "scenario-auth-token"  # noqa: S105 - signs loopback calls to the fakes only
ACCOUNT_SID = "AC" + "5" * 32
TRANSFER_NUMBER = "+4930555000"


@dataclass
class EventWatch:
    """Every event of every call with its arrival time, and a way to wait for a call's end."""

    events: dict[str, list[tuple[float, CallEvent]]] = field(default_factory=lambda: defaultdict(list))
    _ended: dict[str, asyncio.Event] = field(default_factory=dict)

    def publish(self, event: CallEvent) -> None:
        self.events[event.call_sid].append((time.monotonic(), event))
        if event.kind == "call_ended":
            self._ended_event(event.call_sid).set()

    def _ended_event(self, call_sid: str) -> asyncio.Event:
        return self._ended.setdefault(call_sid, asyncio.Event())

    def events_since(self, call_sid: str, since: float) -> list[Any]:
        return [e for at, e in self.events.get(call_sid, []) if at >= since]

    async def wait_ended(self, call_sid: str, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._ended_event(call_sid).wait()
        except TimeoutError:
            return


@dataclass
class ScenarioBot:
    """Satisfies ``simulator.scenario_play.BotView``; pass ``auth_token`` and ``public_url`` to ``play``."""

    base_url: str
    behaviour: FakeBehaviour
    watch: EventWatch
    fake: FakeEndpoints
    settings: Settings
    public_url: str = PUBLIC_URL
    auth_token: str = AUTH_TOKEN

    def events_since(self, call_sid: str, since: float) -> list[Any]:
        return self.watch.events_since(call_sid, since)

    def register_clip(self, text: str, ulaw: bytes) -> None:
        self.behaviour.clips.register(text, ulaw)

    async def wait_ended(self, call_sid: str, timeout_s: float) -> None:
        await self.watch.wait_ended(call_sid, timeout_s)


def scenario_settings(fake: FakeEndpoints, rest_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "openai_api_key": "sk-scenario",
        "openai_base_url": fake.openai_base_url,
        "elevenlabs_api_key": "el-scenario",
        "elevenlabs_base_url": fake.elevenlabs_base_url,
        "stt_provider": "openai",
        "llm_provider": "scripted",
        "tts_provider": "elevenlabs",
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_base_url": rest_url,
        "transfer_number": TRANSFER_NUMBER,
        "data_dir": data_dir,
        "log_format": "json",
        "log_level": "warning",
        "playout_lead_ms": 600_000,  # audio sent ahead: the caller fast-forwards answers nobody talks over
        "console_password": secrets.token_urlsafe(
            16
        ),  # nobody logs in; keeps the login hint out of the output
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def scenario_bot(
    *, behaviour: FakeBehaviour | None = None, data_dir: Path | None = None, **overrides: Any
) -> AsyncIterator[ScenarioBot]:
    """``overrides`` are ``Settings`` fields (a scenario's ``settings:``), e.g. ``llm_provider="openai"``
    to let the OpenAI chat fake (and its ``behaviour.replies``) answer instead of the scripted dialogue."""
    behaviour = behaviour or FakeBehaviour()
    async with AsyncExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voicebot-scenarios-")))
        fake = await stack.enter_async_context(run_fake_providers(behaviour, speech=False))
        rest = await stack.enter_async_context(TwilioRestFake(ACCOUNT_SID, AUTH_TOKEN))
        settings = scenario_settings(fake, rest.base_url, data_dir, **overrides)
        app = create_app(settings)
        watch = EventWatch()
        app.state.ctx.add_sink(watch)
        port = await stack.enter_async_context(
            serve_loopback(app, name="scenario-bot", lifespan="on", ws_max_size=1 << 20)
        )
        yield ScenarioBot(f"http://127.0.0.1:{port}", behaviour, watch, fake, settings)
