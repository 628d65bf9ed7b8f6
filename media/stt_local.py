"""Local speech-to-text with faster-whisper (CTranslate2), for installations without an OpenAI key.

faster-whisper is an optional extra (``pip install 'voicebot[local-stt]'``): it pulls in CTranslate2 and
onnxruntime, which a cloud deployment does not need. ``model`` is a size name ("tiny", "base", "small"),
which faster-whisper downloads on first use where the network allows, or the path of a converted model
directory. Inference is CPU-bound and runs in one worker thread; the model loads on first use (or in
``warm()``), never at construction, so ``voicebot check`` stays instant.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Final

import numpy as np
import soxr

from media.errors import ProviderError
from media.speech import Transcript, Utterance

MODEL_RATE: Final = 16000
"""Whisper models take 16 kHz mono float audio."""


class LocalSpeechToText:
    def __init__(
        self,
        *,
        model: str = "tiny",
        language: str = "de",
        prompt: str = "",
        timeout_s: float = 8.0,
        cpu_threads: int = 2,
        compute_type: str = "int8",
    ) -> None:
        self.model = model
        self.language = language
        self.prompt = prompt
        self.timeout_s = timeout_s
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.name = f"faster-whisper:{model.rsplit('/', 1)[-1]}"
        self._whisper: Any = None
        self._load_lock = threading.Lock()
        self._gate = asyncio.Semaphore(1)

    async def warm(self) -> None:
        """Loads the model now, so the first caller does not wait for it."""
        await asyncio.to_thread(self._load)

    async def transcribe(self, utterance: Utterance) -> Transcript:
        if utterance.duration_s < 0.1:
            return Transcript(text="", language=self.language)
        # One inference at a time: two in parallel on two cores only make both late. A timed-out
        # inference keeps its thread until it finishes; the gate keeps later ones from piling up behind it.
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._gate:
                    text = await asyncio.to_thread(self._run, utterance)
        except TimeoutError:
            raise ProviderError(
                "stt", f"local model took longer than {self.timeout_s:.1f} s", retryable=True
            ) from None
        return Transcript(text=text, language=self.language)

    def _load(self) -> Any:
        with self._load_lock:
            if self._whisper is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError:
                    raise ProviderError(
                        "stt",
                        "faster-whisper is not installed (pip install 'voicebot[local-stt]')",
                        retryable=False,
                    ) from None
                try:
                    self._whisper = WhisperModel(
                        self.model, device="cpu", compute_type=self.compute_type, cpu_threads=self.cpu_threads
                    )
                except Exception as exc:
                    raise ProviderError(
                        "stt", f"cannot load model {self.model!r}: {exc}", retryable=False
                    ) from exc
            return self._whisper

    def _run(self, utterance: Utterance) -> str:
        whisper = self._load()
        samples = np.frombuffer(utterance.pcm16, dtype="<i2").astype(np.float32) / 32768.0
        if utterance.sample_rate != MODEL_RATE:
            samples = soxr.resample(samples, utterance.sample_rate, MODEL_RATE)
        try:
            segments, _info = whisper.transcribe(
                samples,
                language=self.language,
                initial_prompt=self.prompt or None,
                beam_size=1,
                # Greedy only: faster-whisper's default temperature fallback re-decodes up to five times
                # when a result looks unlikely, which took 3-7 s instead of 0.7 s for 2-3 s of telephone
                # speech with the base model, and made the text vary from run to run.
                temperature=0.0,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,
            )
            return " ".join(segment.text.strip() for segment in segments).strip()
        except Exception as exc:
            raise ProviderError("stt", f"local transcription failed: {exc}", retryable=False) from exc
