"""Turns bot text into audio on the wire: cached phrase, else streamed TTS, else the local backup voice.

Each piece of speech ends with a named mark; waiting for its echo is how a turn knows it has been heard.
An echo can be lost (a far end that never answers marks, a stalled socket), so the wait is bounded by the
audio still ahead of the mark plus a slack: the call moves on instead of "speaking" forever. The engines own
their deadlines (``media.budget``); the speaker only decides what to do when one fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

import structlog

from media.errors import ProviderError
from media.playback import PlaybackTracker
from media.playout import Playout
from media.speech import TextToSpeech

ECHO_SLACK_S = 1.5
"""How much later than its audio's end a mark echo may come before it counts as lost (network and jitter)."""

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
        echo_slack_s: float = ECHO_SLACK_S,
    ) -> None:
        self._playout = playout
        self._tts = tts
        self._backup = backup if backup is not None and backup is not tts else None
        self._cached = cached
        self._echo_slack = echo_slack_s
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
        engine: TextToSpeech | None = None,
    ) -> Spoken:
        """Queues ``text`` for playback and returns once all its audio is queued (not played).

        ``engine``: a stream run ahead for this text (``dialogue.preempt.HeldSpeech``), read instead of the
        primary TTS; the backup voice still follows it on failure.

        Raises ``ProviderError`` only when neither the cache, the TTS nor the backup produced a byte; any
        exception of an engine counts as its failure.
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
            total, source = await self._synthesize(text, on_first_audio, on_first_byte, engine)
        self._tracker.segment(mark, text, total, turn=turn, started_at=self._playout.start_of_last(total))
        self._waiters[mark] = asyncio.get_running_loop().create_future()
        self._playout.enqueue_mark(mark)
        return Spoken(mark, total, source)

    async def _synthesize(
        self,
        text: str,
        on_first_audio: Callable[[], None] | None,
        on_first_byte: Callable[[], None] | None,
        held: TextToSpeech | None = None,
    ) -> tuple[int, str]:
        last_error: ProviderError | None = None
        for engine in (held or self._tts, self._backup):
            if engine is None or (
                engine is self._tts and self._backup and time.monotonic() < self._primary_down_until
            ):
                continue
            sent: list[int] = [0]
            try:
                await self._stream(engine, text, sent, on_first_audio, on_first_byte)
            except Exception as exc:  # noqa: BLE001 - any engine failure: the next voice, or the caller's fallback
                error = (
                    exc
                    if isinstance(exc, ProviderError)
                    else ProviderError("tts", repr(exc), retryable=False)
                )
                self._log.warning("tts_failed", engine=engine.name, detail=error.detail, bytes_before=sent[0])
                last_error = error
                if engine is self._tts:
                    # The next sentence would fail (or wait out the budget) again: backup voice for a while.
                    self._primary_down_until = time.monotonic() + PRIMARY_BACKOFF_S
                if sent[0]:
                    return sent[
                        0
                    ], engine.name  # half a sentence is better than repeating it in another voice
                continue
            if sent[0]:
                return sent[0], engine.name
            last_error = ProviderError("tts", f"{engine.name} returned no audio", retryable=True)
        raise last_error or ProviderError("tts", "no text-to-speech engine", retryable=False)

    async def _stream(
        self,
        engine: TextToSpeech,
        text: str,
        sent: list[int],
        on_first_audio: Callable[[], None] | None,
        on_first_byte: Callable[[], None] | None,
    ) -> None:
        async with aclosing(_Closing(engine.synthesize(text))) as stream:
            async for chunk in stream:
                if not chunk:
                    continue
                if sent[0] == 0:
                    if on_first_byte:
                        on_first_byte()
                    if on_first_audio:
                        self._playout.enqueue_call(on_first_audio)
                self._playout.enqueue_audio(chunk)
                sent[0] += len(chunk)

    # --- marks ------------------------------------------------------------------------------------------
    def on_echo(self, mark: str) -> None:
        waiter = self._waiters.pop(mark, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self, marks: list[str]) -> None:
        """Marks that will never be echoed (dropped before they were sent)."""
        for mark in marks:
            self.on_echo(mark)

    async def played(self, mark: str) -> bool:
        """Waits for ``mark``'s echo; False when it never came within the audio ahead of it plus a slack.

        While the feed is paused (an onset is being judged) the wait goes on: the floor decides, not a timer.
        """
        waiter = self._waiters.get(mark)
        while waiter is not None and not waiter.done():
            bound = self._playout.audio_ahead_s() + self._echo_slack
            try:
                async with asyncio.timeout(bound):
                    await asyncio.shield(waiter)
            except TimeoutError:
                if self._playout.paused:
                    continue
                self._log.warning("mark_echo_lost", mark=mark, waited_s=round(bound, 2))
                self.on_echo(mark)
                return False
        return True

    @property
    def pending(self) -> bool:
        return bool(self._waiters)

    def cancel_all(self) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()


class _Closing:
    """Gives any async iterator an ``aclose``, so an abandoned TTS stream is always closed (barge-in)."""

    def __init__(self, inner: AsyncIterator[bytes]) -> None:
        self._inner = inner

    def __aiter__(self) -> _Closing:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._inner)

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
