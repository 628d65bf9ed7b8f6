"""Streaming text-to-speech on ElevenLabs' HTTP ``/v1/text-to-speech/{voice}/stream`` endpoint.

``ulaw_8000`` is exactly what Twilio plays, so bytes go to the caller as they arrive with no transcoding.
The Flash model is the low-latency one; ``language_code="de"`` pins German number and date reading on the
models that accept it. Text normalisation stays on (no ``optimize_streaming_latency=4``), because without it
"24.11.2026" and "14:30 Uhr" are read out wrongly. One HTTP request per sentence keeps barge-in simple:
dropping a sentence is closing a response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, cast

from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.request_options import RequestOptions

from media.budget import DEFAULT_BUDGETS, stream_with_budget
from media.clients import Rotation, rotation
from media.errors import ProviderError
from media.warmup import warm_elevenlabs

OUTPUT_FORMAT: Final = "ulaw_8000"

LANGUAGE_CODE_MODELS: Final = frozenset({"eleven_flash_v2_5", "eleven_turbo_v2_5", "eleven_v3"})
"""Models that accept ``language_code``; the multilingual v2 family rejects or ignores it."""

_NOT_ULAW_TYPES: Final = ("application/json", "text/", "audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg")
_CONTAINER_MAGIC: Final = (b"ID3", b"RIFF", b"OggS", b"fLaC", b'{"')


class ElevenLabsTextToSpeech:
    """Streams μ-law for one sentence; first byte within ``first_byte_timeout_s`` or ``ProviderError``."""

    def __init__(
        self,
        client: AsyncElevenLabs | Rotation[AsyncElevenLabs],
        *,
        voice_id: str,
        model_id: str = "eleven_flash_v2_5",
        language: str = "de",
        first_byte_timeout_s: float = DEFAULT_BUDGETS.tts_first_byte_s,
        total_timeout_s: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        self._clients = rotation(client)
        self.voice_id = voice_id
        self.model_id = model_id
        self.language = language
        self.first_byte_timeout_s = first_byte_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_attempts = max_attempts
        self.name = f"elevenlabs:{model_id}"

    async def warm(self) -> bool:
        """Opens the call's connection ahead of its first sentence (see ``media.warmup``)."""
        return await warm_elevenlabs(self._clients)

    @property
    def cache_key(self) -> str:
        return f"elevenlabs:{self.voice_id}:{self.model_id}:{OUTPUT_FORMAT}"

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        return stream_with_budget(
            lambda: self._request(text),
            stage="tts",
            first_item_s=self.first_byte_timeout_s,
            idle_s=self.first_byte_timeout_s,
            total_s=self.total_timeout_s,
            max_attempts=self.max_attempts,
        )

    async def _request(self, text: str) -> AsyncIterator[bytes]:
        # No re-chunking: audio is handed on in the pieces the network delivered. Any fixed size would hold
        # back the first bytes until that many arrived, and small ones cost a trip through the stream
        # machinery per slice. The SDK types ``chunk_size`` as int but passes it to httpx, where None means
        # "as received".
        options = cast(RequestOptions, {"chunk_size": None})
        if self.model_id in LANGUAGE_CODE_MODELS:
            options["additional_body_parameters"] = {"language_code": self.language}
        async with self._clients.next().text_to_speech.with_raw_response.stream(
            self.voice_id,
            text=text,
            model_id=self.model_id,
            output_format=OUTPUT_FORMAT,
            request_options=options,
        ) as response:
            content_type = response.headers.get("content-type", "")
            if content_type.startswith(_NOT_ULAW_TYPES):
                raise ProviderError("tts", f"expected raw μ-law, got {content_type}", retryable=False)
            first = True
            async for chunk in response.data:
                if not chunk:
                    continue
                if first and chunk.startswith(_CONTAINER_MAGIC):
                    raise ProviderError("tts", "expected raw μ-law, got a file container", retryable=False)
                first = False
                yield chunk
            if first:
                raise ProviderError("tts", "empty audio stream", retryable=True)
