"""What the fleet tests share: the provider fakes, one instance's environment, one answered turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.behaviour import FakeBehaviour
from fakes.server import FakeEndpoints, run_fake_providers
from simulator.twilio import TwilioSimulator
from tests.console.conftest import PASSWORD
from tests.support.audio import german_speech_ulaw

AUTH_TOKEN = "fleet-test-auth-token-90ab"
QUESTION = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")


@pytest.fixture
async def fakes() -> AsyncIterator[FakeEndpoints]:
    async with run_fake_providers(FakeBehaviour(), speech=False) as fake:
        yield fake


def fleet_env(
    fake: FakeEndpoints, public_url: str, redis: str, database: str, data_dir: Path
) -> dict[str, str]:
    return {
        "PUBLIC_URL": public_url,
        "REDIS_URL": redis,
        "DATABASE_URL": database,
        "DATA_DIR": str(data_dir),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CONSOLE_PASSWORD": PASSWORD,
        "SECRET_KEY": "fleet-shared-secret-key-0123456789",
        "OPENAI_API_KEY": "sk-test-key",
        "OPENAI_BASE_URL": fake.openai_base_url,
        "ELEVENLABS_API_KEY": "el-test-key",
        "ELEVENLABS_BASE_URL": fake.elevenlabs_base_url,
        "STT_PROVIDER": "openai",
        "LLM_PROVIDER": "openai",
        "TTS_PROVIDER": "elevenlabs",
        "PLAYOUT_LEAD_MS": "600000",
        "REPROMPT_AFTER_S": "30",
        "DRAIN_TIMEOUT_S": "60",
    }


async def ask_and_hear_answer(call: TwilioSimulator) -> None:
    utt = await call.send_utterance(QUESTION)
    await call.send_silence(800)
    await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=15)
    await call.play_out()
