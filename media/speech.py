"""The narrow contracts of speech providers, so cloud, local and fake engines are interchangeable."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

SAMPLE_RATE = 8000
"""Telephone audio: everything on the call path is 8 kHz mono."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller turn as 16-bit little-endian PCM at 8 kHz, ready for batch STT."""

    pcm16: bytes
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.pcm16) / 2 / self.sample_rate

    def wav_bytes(self) -> bytes:
        """A WAV file in memory: the STT APIs want a file with a header, Twilio never gets one."""
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(self.pcm16)
        return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str = "de"


@runtime_checkable
class SpeechToText(Protocol):
    """Turns one finished utterance into text. Raises ``ProviderError`` on failure."""

    name: str

    async def transcribe(self, utterance: Utterance) -> Transcript: ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Streams headerless 8 kHz μ-law for one piece of text, chunk by chunk as the engine produces it.

    Raises ``ProviderError`` (possibly on first iteration, since SDK streams are lazy).
    ``cache_key`` identifies voice, model and format, so cached phrases are never played in a wrong voice.
    """

    name: str

    @property
    def cache_key(self) -> str: ...

    def synthesize(self, text: str) -> AsyncIterator[bytes]: ...
