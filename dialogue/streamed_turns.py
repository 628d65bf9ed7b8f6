"""The caller's words through a streaming transcriber: fed while they speak, committed at every pause.

A streaming engine (the OpenAI Realtime socket) has heard the words by the time the detector decides, so a
commit answers in a fraction of an upload's time. The session feeds the caller's speech segments (with
the detector's pre-roll, so a soft first syllable is kept; silence and the bot's echo between turns are
not sent), commits at each pause (the speculative transcript the end-of-turn judge reads, and the turn
uses if the caller stays silent) and at the end of the turn, and joins the committed parts of one turn.
A backchannel or noise is discarded. Only one commit runs at a time (the engine matches its answers to
one open commit); frames arriving while a commit waits are held until that commit has taken its audio.

Batch engines keep the session's speculative upload of the whole utterance instead: committing the
pieces of a turn separately would cost a batch engine the sentence context it transcribes better with.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from media.codec import FRAME_MS
from media.speech import Transcript
from media.streaming_stt import StreamingTranscriber
from media.turns import SpeechDiscarded, SpeechStarted, TurnConfig, TurnEvent

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
Part = asyncio.Task[Transcript | Exception]
TurnText = asyncio.Task[Transcript | Exception]


class StreamedTurns:
    """One per call, owning the call's ``StreamingTranscriber`` from ``start`` to ``close``."""

    def __init__(self, transcriber: StreamingTranscriber, *, spawn: Spawn, window_frames: int) -> None:
        self._t = transcriber
        self._spawn = spawn
        self._ring: deque[bytes] = deque(maxlen=max(window_frames, 1))
        self._live = False
        self._held: deque[list[bytes]] = deque()
        """Frames fed after a commit was asked for, one bucket per commit that has not taken its audio."""
        self._lock = asyncio.Lock()
        self._parts: list[Part] = []
        self._last: list[Part] = []
        self.partials = 0
        self.last_partial = ""
        self._log = structlog.get_logger()
        transcriber.on_partial = self._partial

    @classmethod
    def for_call(
        cls,
        open_transcriber: Callable[[str], StreamingTranscriber] | None,
        call_sid: str,
        turn: TurnConfig,
        spawn: Spawn,
    ) -> StreamedTurns | None:
        """The call's streaming transcription, or None for a batch engine (no ``open_transcriber``)."""
        if open_transcriber is None:
            return None
        window = (turn.preroll_ms + turn.speech_confirm_ms) // FRAME_MS + 1  # the detector's pre-roll
        return cls(open_transcriber(call_sid), spawn=spawn, window_frames=window)

    async def start(self) -> None:
        await self._t.start()

    async def close(self) -> None:
        try:
            await self._t.close()
        except Exception as exc:  # noqa: BLE001 - the call is over; its socket is gone either way
            self._log.warning("stt_close_failed", error=repr(exc))

    # --- from the session ---------------------------------------------------------------------------------
    def feed(self, ulaw: bytes) -> None:
        """Every inbound frame: kept for the pre-roll, or sent while the caller's segment lasts."""
        if self._live:
            self._forward(ulaw)
        else:
            self._ring.append(ulaw)

    def on_event(self, event: TurnEvent) -> None:
        if isinstance(event, SpeechStarted) and not self._live:
            self._live = True
            for frame in self._ring:
                self._forward(frame)
            self._ring.clear()
        elif isinstance(event, SpeechDiscarded):
            self._stop()
            self._drop_uncommitted()
            self._parts = []  # a segment that was no turn: its committed pieces are not one either

    def segment_over(self) -> None:
        """After an end of turn: a segment no turn took (the bot talked on) is dropped, not left over."""
        if self._live:
            self._stop()
            self._drop_uncommitted()
            self._parts = []

    def pause(self) -> TurnText:
        """Commits the words since the last commit; the task gives the whole turn's text so far."""
        self._parts.append(self._commit())
        return self._spawn(self._joined(list(self._parts)), "prefetch-stt")

    def end_turn(self, *, after_pause: bool, carry: bool = False) -> TurnText:
        """The turn's transcript. ``after_pause``: the caller stayed silent since the last pause's commit,
        so only silence is left to drop; ``carry``: the caller went on after the previous turn's end
        (one turn however many pauses), so its parts come first."""
        self._stop()
        if after_pause and self._parts:
            self._drop_uncommitted()
        else:
            self._parts.append(self._commit())
        parts = [*self._last, *self._parts] if carry else self._parts
        self._last, self._parts = parts, []
        return self._spawn(self._joined(parts), "turn-stt")

    # --- helpers ------------------------------------------------------------------------------------------
    def _stop(self) -> None:
        self._live = False
        self._ring.clear()

    def _forward(self, ulaw: bytes) -> None:
        if self._held:
            self._held[-1].append(ulaw)
        else:
            self._t.feed(ulaw)

    def _drop_uncommitted(self) -> None:
        if self._held:
            self._held[-1].clear()
        else:
            self._t.discard()

    def _commit(self) -> Part:
        self._held.append([])
        return self._spawn(self._run_commit(), "stt-commit")

    async def _run_commit(self) -> Transcript | Exception:
        async with self._lock:
            # Runs once ``commit`` has taken its audio (synchronously, before its first await): the frames
            # held since this commit was asked for then go to the transcriber, as the next commit's audio.
            asyncio.get_running_loop().call_soon(self._release)
            try:
                return await self._t.commit()
            except Exception as exc:  # noqa: BLE001 - the turn that uses this part answers it
                return exc

    def _release(self) -> None:
        if self._held:
            for frame in self._held.popleft():
                self._t.feed(frame)

    async def _joined(self, parts: list[Part]) -> Transcript | Exception:
        """The parts' texts in order; a failed part is the turn's failure (returned, as in batch STT)."""
        texts: list[str] = []
        language = "de"
        for part in parts:
            transcript = await asyncio.shield(part)  # a dropped prefetch must not cancel a commit
            if isinstance(transcript, Exception):
                return transcript  # the turn raises it, as it does a failed batch upload
            language = transcript.language
            if transcript.text.strip():
                texts.append(transcript.text.strip())
        return Transcript(text=" ".join(texts), language=language)

    def _partial(self, text: str) -> None:
        self.partials += 1
        self.last_partial = text
