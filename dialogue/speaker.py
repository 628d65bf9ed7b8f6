"""Turns bot text into audio on the wire: cached phrase, else streamed TTS, else the local backup voice.

Each piece of speech ends with a named mark; waiting for its echo is how a turn knows it has been heard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import structlog

from media.budget import stream_with_budget
from media.errors import ProviderError
from media.playback import PlaybackTracker
from media.playout import Playout
from media.speech import TextToSpeech

STREAM_GUARD_S = 60.0
"""Gaps and whole sentences are bounded by the engines' own budgets; this only stops a stream that hangs."""

PRIMARY_BACKOFF_S = 20.0
"""After a failure of the primary TTS, the rest of the call's sentences skip it for this long."""


@dataclass(frozen=True, slots=True)
class Spoken:
    mark: str
    audio_bytes: int
    source: str
    """"cache", the primary TTS's name, or the backup's: shown in the console and logs."""


class Speaker:
    def __init__(
        self,
        playout: Playout,
        tts: TextToSpeech,
        *,
        cached: Callable[[str], bytes | None],
        backup: TextToSpeech | None = None,
        tracker: PlaybackTracker,
        first_byte_timeout_s: float = 2.0,
    ) -> None:
        self._playout = playout
        self._tts = tts
        self._backup = backup if backup is not None and backup is not tts else None
        self._cached = cached
        self._first_byte_timeout = first_byte_timeout_s
        self._tracker = tracker
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._primary_down_until = 0.0
        self._seq = 0
        self._log = structlog.get_logger()

    async def say(
        self,
        text: str,
        *,
        tag: str,
        turn: int,
        on_first_audio: Callable[[], None] | None = None,
        on_first_byte: Callable[[], None] | None = None,
    ) -> Spoken:
        """Queues ``text`` for playback and returns once all its audio is queued (not played).

        Raises ``ProviderError`` only when neither the cache, the TTS nor the backup produced a byte.
        """
        self._seq += 1
        mark = f"{tag}-{self._seq}"
        audio = self._cached(text)
        source = "cache"
        total = 0
        if audio:
            if on_first_byte:
                on_first_byte()
            if on_first_audio:
                self._playout.enqueue_call(on_first_audio)
            self._playout.enqueue_audio(audio)
            total = len(audio)
        else:
            total, source = await self._synthesize(text, on_first_audio, on_first_byte)
        self._tracker.segment(mark, text, total, turn=turn, started_at=self._playout.start_of_last(total))
        self._waiters[mark] = asyncio.get_running_loop().create_future()
        self._playout.enqueue_mark(mark)
        return Spoken(mark, total, source)

    async def _synthesize(
        self, text: str, on_first_audio: Callable[[], None] | None, on_first_byte: Callable[[], None] | None
    ) -> tuple[int, str]:
        last_error: ProviderError | None = None
        for engine in (self._tts, self._backup):
            if engine is None or (
                engine is self._tts and self._backup and time.monotonic() < self._primary_down_until
            ):
                continue
            total = 0
            try:
                stream = stream_with_budget(
                    partial(engine.synthesize, text),
                    stage="tts",
                    first_item_s=self._first_byte_timeout,
                    idle_s=STREAM_GUARD_S,
                    total_s=STREAM_GUARD_S,
                    max_attempts=1,
                )
                async for chunk in stream:
                    if not chunk:
                        continue
                    if total == 0:
                        if on_first_byte:
                            on_first_byte()
                        if on_first_audio:
                            self._playout.enqueue_call(on_first_audio)
                    self._playout.enqueue_audio(chunk)
                    total += len(chunk)
            except ProviderError as exc:
                self._log.warning("tts_failed", engine=engine.name, detail=exc.detail, bytes_before=total)
                last_error = exc
                if engine is self._tts:
                    # The next sentence would fail (or wait out the budget) again: backup voice for a while.
                    self._primary_down_until = time.monotonic() + PRIMARY_BACKOFF_S
                if total:
                    return total, engine.name  # half a sentence is better than repeating it in another voice
                continue
            if total:
                return total, engine.name
            last_error = ProviderError("tts", f"{engine.name} returned no audio", retryable=True)
        raise last_error or ProviderError("tts", "no text-to-speech engine", retryable=False)

    # --- marks ------------------------------------------------------------------------------------------
    def on_echo(self, mark: str) -> None:
        waiter = self._waiters.pop(mark, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self, marks: list[str]) -> None:
        """Marks that will never be echoed (dropped before they were sent)."""
        for mark in marks:
            self.on_echo(mark)

    async def played(self, mark: str) -> None:
        waiter = self._waiters.get(mark)
        if waiter is not None:
            await asyncio.shield(waiter)

    @property
    def pending(self) -> bool:
        return bool(self._waiters)

    def cancel_all(self) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()
