"""The bot under uvicorn on a loopback port, with the recording handler as its call session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar

from tests.support.handlers import RecordingFactory
from tests.support.server import run_app
from web.app import create_app
from web.calls import TwilioEdge
from web.settings import Settings

AUTH_TOKEN = "edge-test-auth-token-5f3a"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_URL = "https://bot.example.com"


@dataclass
class Bot:
    base_url: str
    app: Litestar
    factory: RecordingFactory

    @property
    def edge(self) -> TwilioEdge:
        return TwilioEdge.of(self.app.state.ctx)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/media"


def edge_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stt_provider": "none",
        "public_url": PUBLIC_URL,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_account_sid": "",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(
    factory: RecordingFactory | None = None, *, wired: bool = True, **overrides: Any
) -> AsyncIterator[Bot]:
    factory = factory or RecordingFactory()
    app = create_app(edge_settings(**overrides), session_factory=factory if wired else None)
    async with run_app(app) as base_url:
        yield Bot(base_url, app, factory)


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    """Signatures on (auth token set), PUBLIC_URL set, recording session wired."""
    async with running_bot() as b:
        yield b


@pytest.fixture
async def open_bot() -> AsyncIterator[Bot]:
    """No auth token: what a developer runs locally with the simulator."""
    async with running_bot(twilio_auth_token="") as b:
        yield b
