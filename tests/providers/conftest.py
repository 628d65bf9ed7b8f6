"""Loopback provider fakes and the real SDK clients pointed at them, one set per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from fakes.behaviour import FakeBehaviour
from fakes.server import FakeEndpoints, run_fake_providers

OPENAI_KEY = "sk-test-openai"
ELEVENLABS_KEY = "xi-test-elevenlabs"


@pytest.fixture
async def fake() -> AsyncIterator[FakeEndpoints]:
    """Both fakes, no latency; TTS answers with a tone (real speech costs time and is tested apart)."""
    behaviour = FakeBehaviour(openai_api_key=OPENAI_KEY, elevenlabs_api_key=ELEVENLABS_KEY)
    async with run_fake_providers(behaviour, speech=False) as endpoints:
        yield endpoints


@pytest.fixture
async def openai_client(fake: FakeEndpoints) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(api_key=OPENAI_KEY, base_url=fake.openai_base_url, max_retries=0, timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def elevenlabs_client(fake: FakeEndpoints) -> AsyncIterator[AsyncElevenLabs]:
    http = httpx.AsyncClient(timeout=10)
    yield AsyncElevenLabs(api_key=ELEVENLABS_KEY, base_url=fake.elevenlabs_base_url, httpx_client=http)
    await http.aclose()
