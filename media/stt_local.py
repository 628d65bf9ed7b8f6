"""Local speech-to-text with faster-whisper (CTranslate2), for installations without an OpenAI key.

``model`` is a size name ("tiny", "base", "small"), which faster-whisper downloads on first use where the
network allows, or the path of a converted model directory (the packaged Whisper base is one). Inference is
CPU-bound: it runs on one dedicated worker thread, because two inferences in parallel on a two-core machine
only make both late. The model loads in ``start_loading()`` (called while the server starts, so ``/ready``
can say "loading" until it is there), never at construction, so ``voicebot check`` stays instant.

The adapter owns its time budget: ``transcribe`` raises ``ProviderError`` within ``timeout_s``. A thread
cannot be killed, so an inference that outlives its budget keeps the worker until it ends; it is counted
(``overruns``) and logged when it finally finishes; a job abandoned before it started is never decoded,
and a long one (faster-whisper's loop) stops between segments. Later requests queue
behind it on the same single thread, and at most ``max_queued`` wait at once: beyond that the adapter
refuses at once instead of stacking work nobody will wait for.

A transcript the model itself rates as a guess (``min_avg_logprob``) is refused with a ``ProviderError``
("not understood"), so the caller hears the short request to say it again rather than an answer to words
they never said; decoding is capped by the length of the speech, so a repetition loop cannot hold the
worker for seconds. A turn is encoded in one window of ``window_s`` (``media.whisper_decode``): 30 s as
Whisper was trained, or shorter for speed at a cost in accuracy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, Literal

import numpy as np
import soxr
import structlog

from media.errors import ProviderError
from media.speech import Transcript, Utterance
from media.whisper_decode import MAX_WINDOW_S, ShortWindowDecoder

MODEL_RATE: Final = 16000
"""Whisper models take 16 kHz mono float audio."""

TRIM_FLOOR: Final = 0.01
"""Absolute sample level (about -40 dBFS) below which leading and trailing audio is line noise."""

TRIM_KEEP_S: Final = 0.1
"""Kept around the speech after trimming, so soft first and last sounds survive."""

TOKENS_BASE: Final = 12
TOKENS_PER_S: Final = 8
"""Decoding stops after ``TOKENS_BASE + TOKENS_PER_S`` × seconds of speech tokens. German speech runs at
about four to five Whisper tokens a second, so real words never reach the cap; a repetition loop ("Lamp,
Lamp, Lamp, …", "ein Mie, ein Mie, …") does, and without it ran to Whisper's 448-token limit: 7.6 s of
decoding for 2.1 s of speech in a browser call, while the caller waited."""

MIN_AVG_LOGPROB: Final = -1.55
"""Below this mean token log-probability the transcript is a guess, not what the caller said. On eSpeak
telephone German the base model's right transcripts scored -1.51 or better and its wild guesses ("Man hat
ein bisschen mehr am Lampen" for "Wann haben Sie am Samstag geöffnet?") -1.61 or worse, over 30 renderings:
answering a guess sends the caller a 10 s menu of topics, over which their repeated question is lost; a
refused guess gets the short "please say that again" line instead."""

log = structlog.get_logger()

LoadState = Literal["idle", "loading", "ready", "failed"]


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
        max_queued: int = 2,
        min_avg_logprob: float | None = MIN_AVG_LOGPROB,
        window_s: float = MAX_WINDOW_S,
    ) -> None:
        self.model = model
        self.language = language
        self.prompt = prompt
        self.timeout_s = timeout_s
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.max_queued = max_queued
        self.min_avg_logprob = min_avg_logprob
        self.window_s = window_s
        """The encoder window for one turn: shorter is faster and less accurate (``media.whisper_decode``)."""
        self._decoder: ShortWindowDecoder | None = None  # made on the worker thread, used only there
        self.name = f"faster-whisper:{model.rsplit('/', 1)[-1]}"
        self.state: LoadState = "idle"
        self.load_error = ""
        self.overruns = 0
        """Inferences that were still running when their caller's budget ran out."""
        self.unclear = 0
        """Transcripts refused as guesses (mean log-probability below ``min_avg_logprob``)."""
        self._whisper: Any = None
        self._load_lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-stt")
        self._queued = 0
        self._queued_lock = threading.Lock()  # counted on the event loop, discounted on the worker
        self._loading: Future[Any] | None = None

    def start_loading(self) -> None:
        """Loads the model on the worker thread in the background; ``state`` tells how far it got."""
        if self._loading is None and self._whisper is None:
            self.state = "loading"
            self._loading = self._worker.submit(self._load)

    async def warm(self) -> None:
        """Loads the model now, so the first caller does not wait for it."""
        self.start_loading()
        if self._loading is not None:
            await asyncio.wrap_future(self._loading)

    async def aclose(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def transcribe(self, utterance: Utterance) -> Transcript:
        if utterance.duration_s < 0.1:
            return Transcript(text="", language=self.language)
        with self._queued_lock:
            if self._queued >= self.max_queued:
                raise ProviderError(
                    "stt", f"local model busy: {self._queued} transcriptions already waiting", retryable=False
                )
            self._queued += 1
        abandoned = threading.Event()
        job = _Job(utterance, abandoned, time.monotonic())
        future = self._worker.submit(self._run, job)
        future.add_done_callback(self._finished)
        budget_s = self.timeout_s
        try:
            text = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), budget_s)
        except TimeoutError:
            abandoned.set()
            if not future.cancel():  # already running: it keeps the worker until it ends
                self.overruns += 1
                future.add_done_callback(lambda _f: _log_overrun(job, budget_s))
            raise ProviderError(
                "stt", f"local model took longer than {budget_s:g} s", retryable=False
            ) from None
        except asyncio.CancelledError:
            abandoned.set()
            future.cancel()
            raise
        return Transcript(text=text, language=self.language)

    def _finished(self, _future: Future[str]) -> None:
        with self._queued_lock:  # runs on the worker thread or, for a cancelled job, the cancelling one
            self._queued -= 1

    def _load(self) -> Any:
        with self._load_lock:
            if self._whisper is None:
                try:
                    self._whisper = self._construct()
                except ProviderError as exc:
                    self.state, self.load_error = "failed", exc.detail
                    raise
                self.state = "ready"
            return self._whisper

    def _construct(self) -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ProviderError("stt", "faster-whisper is not installed", retryable=False) from None
        try:
            return WhisperModel(
                self.model, device="cpu", compute_type=self.compute_type, cpu_threads=self.cpu_threads
            )
        except Exception as exc:
            raise ProviderError("stt", f"cannot load model {self.model!r}: {exc}", retryable=False) from exc

    def _run(self, job: _Job) -> str:
        whisper = self._load()
        if job.abandoned.is_set():
            return ""
        samples = np.frombuffer(job.utterance.pcm16, dtype="<i2").astype(np.float32) / 32768.0
        samples = speech_only(samples, job.utterance.sample_rate)
        if job.utterance.sample_rate != MODEL_RATE:
            samples = soxr.resample(samples, job.utterance.sample_rate, MODEL_RATE)
        speech_s = len(samples) / MODEL_RATE
        try:
            if ShortWindowDecoder.fits(speech_s):
                if self._decoder is None:
                    self._decoder = ShortWindowDecoder(
                        whisper, language=self.language, prompt=self.prompt, window_s=self.window_s
                    )
                decoded = self._decoder.decode(samples, token_cap(speech_s))
                text, mean = decoded.text, decoded.avg_logprob
            else:
                text, mean = self._transcribe_whole(whisper, samples, job)
        except Exception as exc:
            raise ProviderError("stt", f"local transcription failed: {exc}", retryable=False) from exc
        if text and self.min_avg_logprob is not None and mean < self.min_avg_logprob:
            self.unclear += 1
            log.info(
                "local_stt_unclear", avg_logprob=round(mean, 2), audio_s=round(job.utterance.duration_s, 2)
            )
            raise ProviderError(
                "stt",
                f"not understood: the local model only guessed (log-probability {mean:.2f})",
                retryable=False,
            )
        return text

    def _transcribe_whole(self, whisper: Any, samples: np.ndarray[Any, Any], job: _Job) -> tuple[str, float]:
        """faster-whisper's own loop over 30 s windows: for speech too long for one short window."""
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
            max_new_tokens=token_cap(len(samples) / MODEL_RATE),
        )
        texts, weighted, tokens = [], 0.0, 0
        for segment in segments:  # decoded lazily: stop as soon as nobody waits any more
            if job.abandoned.is_set():
                break
            texts.append(segment.text.strip())
            weighted += segment.avg_logprob * max(len(segment.tokens), 1)
            tokens += max(len(segment.tokens), 1)
        return " ".join(texts).strip(), weighted / max(tokens, 1)


def token_cap(speech_s: float) -> int:
    """The most tokens ``speech_s`` seconds of speech can hold (see ``TOKENS_PER_S``)."""
    return TOKENS_BASE + int(TOKENS_PER_S * speech_s)


class _Job:
    __slots__ = ("abandoned", "started", "utterance")

    def __init__(self, utterance: Utterance, abandoned: threading.Event, started: float) -> None:
        self.utterance = utterance
        self.abandoned = abandoned
        self.started = started


def _log_overrun(job: _Job, budget_s: float) -> None:
    log.warning(
        "local_stt_overrun",
        budget_s=budget_s,
        took_s=round(time.monotonic() - job.started, 2),
        audio_s=round(job.utterance.duration_s, 2),
    )


def speech_only(samples: np.ndarray[Any, Any], rate: int) -> np.ndarray[Any, Any]:
    """Cuts leading and trailing near-silence: the turn detector's pre-roll and end-of-turn pause.

    Whisper tends to invent words in silence ("Untertitel im Auftrag des ZDF"), and every second removed is
    decoding time saved.
    """
    loud = np.flatnonzero(np.abs(samples) > TRIM_FLOOR)
    if not len(loud):
        return samples
    keep = int(TRIM_KEEP_S * rate)
    return samples[max(0, int(loud[0]) - keep) : int(loud[-1]) + keep]
