"""Local German text-to-speech with eSpeak NG: no key, no network, robotic but always there.

It is the TTS of a keyless installation and the voice of last resort for cached fallback phrases. Synthesis
is CPU-bound C code, so it runs in a worker thread and the event loop keeps serving other calls; the whole
sentence is rendered first (eSpeak is 20-50x faster than real time) and then handed out in 100 ms chunks,
the same granularity a streaming cloud TTS delivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

from media.errors import ProviderError

CHUNK_BYTES: Final = 800
"""100 ms of 8 kHz μ-law."""


class EspeakTextToSpeech:
    def __init__(self, *, voice: str = "de", rate_wpm: int = 160, pitch: int = 50) -> None:
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.pitch = pitch
        self.name = f"espeak-ng:{voice}"

    @property
    def cache_key(self) -> str:
        return f"espeak-ng:{self.voice}:{self.rate_wpm}:{self.pitch}:ulaw_8000"

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        try:
            audio = await asyncio.to_thread(self._render, text)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(
                "tts", f"espeak-ng failed: {type(exc).__name__}: {exc}", retryable=False
            ) from exc
        for offset in range(0, len(audio), CHUNK_BYTES):
            yield audio[offset : offset + CHUNK_BYTES]

    def _render(self, text: str) -> bytes:
        from media.espeak import synthesize_ulaw  # loads the C library on first use only

        return synthesize_ulaw(text, self.voice, self.rate_wpm, self.pitch)

    @staticmethod
    def available() -> str | None:
        """None if eSpeak NG can be loaded here, else the reason (for ``voicebot check``)."""
        try:
            import espeakng_loader

            espeakng_loader.get_library_path()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available", with its reason
            return f"espeak-ng is not available: {exc}"
        return None
