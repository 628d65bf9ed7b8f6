"""A real bot under uvicorn, wired to the loopback provider fakes, for whole-call tests.

Only collaborators are swapped (provider base URLs, data directory); the session, machine, edge and
providers are the production code paths. When the bot stops, every call it held is checked: no invalid
trigger, no ``CallError`` of a stage the test did not expect (``Bot.expected_errors``), no task left.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogue.events import CallEvent
from dialogue.session import CallSession
from fakes.behaviour import FakeBehaviour
from fakes.server import FakeEndpoints, run_fake_providers
from media.transport import CallControl, CallTransport, StreamStart
from tests.support.server import run_app
from web.app import create_app
from web.context import AppContext
from web.settings import Settings

PUBLIC_URL = "https://bot.example.test"


@dataclass
class EventLog:
    events: list[CallEvent] = field(default_factory=list)

    def publish(self, event: CallEvent) -> None:
        self.events.append(event)

    def of(self, kind: str, call_sid: str | None = None) -> list[Any]:
        return [e for e in self.events if e.kind == kind and (call_sid is None or e.call_sid == call_sid)]


@dataclass
class Bot:
    base_url: str
    ctx: AppContext
    fake: FakeEndpoints
    events: EventLog
    sessions: list[CallSession]
    expected_errors: set[str] = field(default_factory=set)
    """Stages whose ``CallError`` the test provokes on purpose."""

    @property
    def behaviour(self) -> FakeBehaviour:
        return self.fake.behaviour

    def session(self, call_sid: str) -> CallSession:
        return next(s for s in self.sessions if s.call_sid == call_sid)


def bot_settings(fake: FakeEndpoints, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "sk-test-key",
        "openai_base_url": fake.openai_base_url,
        "elevenlabs_api_key": "el-test-key",
        "elevenlabs_base_url": fake.elevenlabs_base_url,
        "stt_provider": "openai",
        "llm_provider": "openai",
        "tts_provider": "elevenlabs",
        "public_url": PUBLIC_URL,
        "data_dir": data_dir,
        "playout_lead_ms": 600_000,  # send at once; the simulator fast-forwards playback
        "reprompt_after_s": 30.0,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(data_dir: Path, *, speech: bool = False, **overrides: Any) -> AsyncIterator[Bot]:
    async with run_fake_providers(FakeBehaviour(), speech=speech) as fake:
        app = create_app(bot_settings(fake, data_dir, **overrides))
        ctx: AppContext = app.state.ctx
        events = EventLog()
        ctx.add_sink(events)
        sessions: list[CallSession] = []
        real = ctx.session_factory
        assert real is not None, ctx.not_ready_reasons()

        def tracking(transport: CallTransport, control: CallControl, start: StreamStart) -> CallSession:
            session = real(transport, control, start)
            assert isinstance(session, CallSession)
            sessions.append(session)
            return session

        ctx.session_factory = tracking
        async with run_app(app) as base_url:
            bot = Bot(base_url, ctx, fake, events, sessions)
            yield bot
        for session in sessions:
            assert session.machine.invalid_triggers == 0, session.machine.counters.invalid
            assert session.active_tasks() == 0, f"{session.call_sid} left tasks running"
        unexpected = [e for e in events.of("error") if e.stage not in bot.expected_errors]
        assert not unexpected, unexpected
