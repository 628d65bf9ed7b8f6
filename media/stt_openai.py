"""Batch speech-to-text on OpenAI's ``/v1/audio/transcriptions`` (Whisper and the gpt-4o transcribe models).

The utterance is already cut by our own turn-taking, so one upload per turn is enough; the model name stays
configurable because OpenAI has announced the shutdown of today's names. A prompt with the company's own
words (street names, product names, "Zählerstand") is the cheapest accuracy gain there is for a hotline.
"""

from __future__ import annotations

from typing import Final

from openai import AsyncOpenAI, omit

from media.budget import DEFAULT_BUDGETS, call_with_budget
from media.clients import Rotation, rotation
from media.speech import Transcript, Utterance
from media.warmup import warm_openai

MIN_AUDIO_S: Final = 0.1
"""OpenAI answers HTTP 400 "Audio file is too short" below this; such a blip is no turn anyway."""


class OpenAISpeechToText:
    """One utterance in, German text out, within ``timeout_s`` including one retry if time allows."""

    def __init__(
        self,
        client: AsyncOpenAI | Rotation[AsyncOpenAI],
        *,
        model: str = "gpt-4o-mini-transcribe",
        language: str = "de",
        prompt: str = "",
        timeout_s: float = DEFAULT_BUDGETS.stt_s,
        max_attempts: int = 2,
    ) -> None:
        self._clients = rotation(client)
        self.model = model
        self.language = language
        self.prompt = prompt
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.name = f"openai:{model}"

    async def warm(self) -> bool:
        """Opens the call's connection ahead of its first turn (see ``media.warmup``)."""
        return await warm_openai(self._clients, self.model)

    async def transcribe(self, utterance: Utterance) -> Transcript:
        if utterance.duration_s < MIN_AUDIO_S:
            return Transcript(text="", language=self.language)
        wav = utterance.wav_bytes()

        async def attempt(time_left: float) -> str:
            # The filename's extension is how the API recognises the container; ``json`` is the one
            # response format every transcription model accepts.
            result = await self._clients.next().audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", wav, "audio/wav"),
                language=self.language,
                response_format="json",
                prompt=self.prompt or omit,
                timeout=time_left,
            )
            return result.text

        text = await call_with_budget(
            attempt, stage="stt", budget_s=self.timeout_s, max_attempts=self.max_attempts
        )
        return Transcript(text=text.strip(), language=self.language)
