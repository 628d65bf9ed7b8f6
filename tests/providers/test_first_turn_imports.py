"""The first call after a start pays no SDK import in its first turn.

The OpenAI and ElevenLabs SDKs import their resources (and dozens of pydantic models) on first use. Before
``web.provider_clients`` primed them, the first reply after every start waited about 40 ms more, and the
whole event loop with it. Modules stay imported for the life of the interpreter, so this runs in a fresh one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path

from dialogue.llm import Message
from fakes.behaviour import FakeBehaviour
from fakes.server import run_fake_providers
from media.espeak import synthesize_pcm16
from media.speech import Utterance
from web.providers import build_providers
from web.settings import Settings


async def main() -> None:
    behaviour = FakeBehaviour(openai_api_key="sk-test", elevenlabs_api_key="xi-test")
    async with run_fake_providers(behaviour, speech=False) as fake:
        settings = Settings.model_validate({
            "openai_api_key": "sk-test", "elevenlabs_api_key": "xi-test",
            "openai_base_url": fake.openai_base_url, "elevenlabs_base_url": fake.elevenlabs_base_url,
            "stt_mode": "batch", "data_dir": Path(sys.argv[1]), "business_profile": None,
        })
        providers = build_providers(settings)
        providers.warmup.enter_call()
        ring = providers.warmup.ring()  # what /voice starts while the phone rings
        assert ring is not None
        await ring
        utterance = Utterance(synthesize_pcm16("Guten Tag."))
        before = set(sys.modules)
        await providers.stt.transcribe(utterance)
        question = [Message("system", "Sie sind ein Telefonassistent."), Message("user", "Guten Tag.")]
        replies = [part async for part in providers.llm.stream_reply(question, [])]
        audio = [chunk async for chunk in providers.tts.synthesize("Guten Tag, wie kann ich helfen?")]
        assert replies and audio
        print(json.dumps(sorted(set(sys.modules) - before)))
        await providers.aclose()


asyncio.run(main())
"""


def test_the_first_turn_after_a_start_imports_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    imported = json.loads(run.stdout.strip().splitlines()[-1])
    assert imported == [], f"the first turn imported {imported}"
