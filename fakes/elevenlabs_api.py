"""A loopback ElevenLabs: ``POST /v1/text-to-speech/{voice_id}/stream`` with chunked audio.

The audio is real German speech from eSpeak NG when it is available, so whatever listens downstream (VAD,
the simulator's caller, a human with headphones) gets speech, not a tone; it is chunked in 100 ms pieces and
paced like a streaming TTS. Errors use ElevenLabs' ``{"detail": {"status", "message"}}`` bodies.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Final

import numpy as np
import structlog

from fakes.asgi import Exchange
from fakes.behaviour import FakeBehaviour, Fault, RecordedRequest
from media.codec import pcm16_to_ulaw

log = structlog.get_logger()

CHUNK_MS: Final = 100
_PCM_RATES: Final = {"pcm_8000": 8000, "pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000}
_ROUTE: Final = re.compile(r"^/v1/text-to-speech/(?P<voice>[^/]+)(?P<stream>/stream)?$")
_ERRORS: Final = {
    Fault.RATE_LIMIT: (429, "too_many_concurrent_requests", "Too many concurrent requests."),
    Fault.SERVER_ERROR: (500, "internal_server_error", "An internal error occurred."),
}


class SpeechSource:
    """PCM16 at 8 kHz for a text, cached per text: synthesis costs ~50 ms per sentence, replays nothing."""

    def __init__(self, use_espeak: bool = True) -> None:
        self.use_espeak = use_espeak
        self._cache: dict[str, bytes] = {}

    async def pcm16(self, text: str) -> bytes:
        if text not in self._cache:
            self._cache[text] = await asyncio.to_thread(self._render, text)
        return self._cache[text]

    def _render(self, text: str) -> bytes:
        if self.use_espeak:
            try:
                from media.espeak import synthesize_pcm16

                return synthesize_pcm16(text)
            except Exception as exc:  # noqa: BLE001 - no eSpeak here: a tone of plausible length will do
                log.warning("fake_tts_without_speech", error=str(exc))
                self.use_espeak = False
        return _tone(text)


def _tone(text: str) -> bytes:
    """A quiet 220 Hz tone, 60 ms per character: cheap stand-in audio of a plausible length."""
    n = max(800, int(len(text) * 0.06 * 8000))
    t = np.arange(n) / 8000
    return (np.sin(2 * math.pi * 220 * t) * 3000).astype("<i2").tobytes()


async def _models(ex: Exchange, behaviour: FakeBehaviour) -> None:
    """``GET /v1/models``: the text-to-speech models, in the real API's shape (fewer fields)."""
    key = ex.headers.get("xi-api-key", "")
    if not key or (behaviour.elevenlabs_api_key is not None and key != behaviour.elevenlabs_api_key):
        await ex.respond_json(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})
        return
    behaviour.requests.append(RecordedRequest("tts_models", ex.path, _masked(ex.headers), {}, ex.client_port))
    models = [
        {"model_id": m, "name": m, "can_do_text_to_speech": True, "languages": [{"language_id": "de"}]}
        for m in ("eleven_flash_v2_5", "eleven_multilingual_v2")
    ]
    await ex.respond_json(200, models)


async def handle(ex: Exchange, behaviour: FakeBehaviour, speech: SpeechSource) -> None:
    if ex.method == "GET" and ex.path == "/v1/models":
        await _models(ex, behaviour)
        return
    match = _ROUTE.match(ex.path)
    if ex.method != "POST" or match is None:
        await ex.respond_json(404, {"detail": {"status": "not_found", "message": f"No route {ex.path}"}})
        return
    key = ex.headers.get("xi-api-key", "")
    if not key or (behaviour.elevenlabs_api_key is not None and key != behaviour.elevenlabs_api_key):
        await ex.respond_json(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})
        return
    body = await ex.json()
    record = {**body, "voice_id": match["voice"], "query": dict(ex.query)}
    behaviour.requests.append(RecordedRequest("tts", ex.path, _masked(ex.headers), record, ex.client_port))
    conduct = behaviour.tts
    fault = conduct.take_fault()
    if not await ex.pause(conduct.pacing.ttfb_ms):
        return
    if fault is Fault.TIMEOUT:
        await ex.hold()
        return
    if fault in _ERRORS:
        status, code, message = _ERRORS[fault]
        await ex.respond_json(status, {"detail": {"status": code, "message": message}})
        return
    text = body.get("text")
    fmt = ex.query.get("output_format", "mp3_44100_128")
    if not isinstance(text, str) or not text.strip():
        await ex.respond_json(400, {"detail": {"status": "invalid_text", "message": "Text is empty."}})
        return
    if fmt != "ulaw_8000" and fmt not in _PCM_RATES:
        message = f"The fake speaks ulaw_8000 and pcm_*, not {fmt}."
        await ex.respond_json(400, {"detail": {"status": "invalid_output_format", "message": message}})
        return
    if fault is Fault.MALFORMED:
        await ex.respond_json(200, {"audio_base64": None, "note": "not audio"})
        return
    audio, bytes_per_ms = await _encode(await speech.pcm16(text), fmt)
    await ex.start(200, "audio/basic" if fmt == "ulaw_8000" else "audio/pcm")
    step = int(CHUNK_MS * bytes_per_ms)
    for offset in range(0, len(audio), step):
        if offset and not await ex.pause(conduct.pacing.per_token_ms):
            return
        await ex.write(audio[offset : offset + step])
        if fault is Fault.RESET:
            return
    await ex.end()


async def _encode(pcm8k: bytes, fmt: str) -> tuple[bytes, float]:
    """Audio in the requested format and its bytes per millisecond."""
    if fmt == "ulaw_8000":
        return pcm16_to_ulaw(pcm8k), 8.0
    rate = _PCM_RATES[fmt]
    if rate == 8000:
        return pcm8k, 16.0
    import soxr

    samples = np.frombuffer(pcm8k, dtype="<i2")
    resampled = await asyncio.to_thread(soxr.resample, samples, 8000, rate)
    return np.asarray(resampled, dtype="<i2").tobytes(), rate * 2 / 1000


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in ("authorization", "xi-api-key") else v) for k, v in headers.items()}
