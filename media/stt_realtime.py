"""Streaming speech-to-text on OpenAI's Realtime API, in a transcription-only session.

Twilio's μ-law frames go to the socket as they arrive (``audio/pcmu``, no transcoding), batched to about
100 ms per message: one send per 20 ms frame would cost a JSON encode and a socket write fifty times a
second per call. The server's own turn detection is off; our detector commits the buffer, so turn-taking
stays ours and the server only transcribes. After a commit the server answers with deltas and a final
transcript for that segment, usually within a few hundred milliseconds, because it has heard the audio.

Nothing may leave a caller in silence, so a commit has one budget for everything: the final transcript
within ``final_budget_s``; if the socket closed, stalled or failed, one reconnect that sends the held
segment again; then the batch upload of the same audio (the adapter holds it since the last commit), all
inside ``budget_s``, with ``batch_reserve_s`` of it kept for the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import structlog
from openai import AsyncOpenAI

from media.budget import classify
from media.clients import Rotation, rotation
from media.codec import ulaw_to_pcm16
from media.errors import ProviderError
from media.realtime_link import RealtimeLink, Segment, append_event, error_message, settle
from media.speech import SpeechToText, Transcript, Utterance
from media.streaming_stt import PartialHandler, StreamingTranscriber

log = structlog.get_logger()

BYTES_PER_MS: Final = 8
"""8 kHz μ-law: one byte per sample."""
MIN_SEGMENT_MS: Final = 100
"""The API rejects a commit of less than 100 ms of audio; such a blip is no turn anyway."""
MAX_HOLD_S: Final = 60.0
MAX_FAILED_TURNS: Final = 2
"""After this many turns in a row without a realtime transcript, the call stays on the batch upload."""


class RealtimeSTT:
    """The per-process engine: one realtime socket per call, the batch engine as each call's fallback."""

    def __init__(
        self,
        client: AsyncOpenAI | Rotation[AsyncOpenAI],
        *,
        fallback: SpeechToText,
        model: str = "gpt-4o-mini-transcribe",
        language: str = "de",
        prompt: str = "",
        budget_s: float = 3.0,
        final_budget_s: float = 0.8,
        batch_reserve_s: float = 1.0,
        connect_timeout_s: float = 2.0,
        append_ms: int = 100,
    ) -> None:
        self._clients = rotation(client)
        self.fallback = fallback
        self.model = model
        self.language = language
        self.prompt = prompt
        self.budget_s = budget_s
        self.final_budget_s = final_budget_s
        self.batch_reserve_s = batch_reserve_s
        self.connect_timeout_s = connect_timeout_s
        self.append_ms = append_ms
        self.name = f"openai-realtime:{model}"

    def session_config(self) -> dict[str, Any]:
        transcription: dict[str, Any] = {"model": self.model, "language": self.language}
        if self.prompt:
            transcription["prompt"] = self.prompt
        audio_input = {
            "format": {"type": "audio/pcmu"},
            "transcription": transcription,
            "turn_detection": None,
        }
        return {"type": "transcription", "audio": {"input": audio_input}}

    def open_call(self, call_sid: str) -> StreamingTranscriber:
        return RealtimeTranscriber(self, self._clients.next(), call_sid)


class RealtimeTranscriber:
    """One call's realtime socket; see ``StreamingTranscriber`` for the contract."""

    def __init__(self, engine: RealtimeSTT, client: AsyncOpenAI, call_sid: str) -> None:
        self._engine = engine
        self._client = client
        self._log = log.bind(call_sid=call_sid, stt=engine.name)
        self._segment = bytearray()
        self._unsent = 0
        """Bytes at the end of ``_segment`` not yet sent (the part of the next 100 ms message)."""
        self._chunk = engine.append_ms * BYTES_PER_MS
        self._link: RealtimeLink | None = None
        self._connecting: asyncio.Task[RealtimeLink | None] | None = None
        self._turn: Segment | None = None
        self._failed_turns = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False
        self.on_partial: PartialHandler | None = None

    # --- the contract -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._ensure_link(asyncio.get_running_loop().time() + self._engine.connect_timeout_s)

    def feed(self, ulaw: bytes) -> None:
        self._segment += ulaw
        self._unsent += len(ulaw)
        if len(self._segment) > MAX_HOLD_S * 8000:
            cut = len(self._segment) - int(MAX_HOLD_S * 8000)
            del self._segment[:cut]
            self._unsent = min(self._unsent, len(self._segment))
        if self._unsent >= self._chunk:
            self._flush()

    def discard(self) -> None:
        self._segment.clear()
        self._unsent = 0
        if self._link is not None:
            self._link.send({"type": "input_audio_buffer.clear"})

    async def commit(self) -> Transcript:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._engine.budget_s
        if len(self._segment) < MIN_SEGMENT_MS * BYTES_PER_MS:
            self.discard()
            return Transcript(text="", language=self._engine.language)
        self._flush()
        audio = bytes(self._segment)
        self._segment.clear()
        turn = Segment(audio, loop.create_future())
        self._turn = turn
        try:
            text = await self._realtime(turn, deadline - self._engine.batch_reserve_s)
        finally:
            self._turn = None
            settle(turn.done)
        if text is not None:
            self._failed_turns = 0
            return Transcript(text=text.strip(), language=self._engine.language)
        self._failed_turns += 1
        if self._failed_turns >= MAX_FAILED_TURNS and self._link is not None:
            self._log.warning("stt_realtime_given_up", failed_turns=self._failed_turns)
            self._retire()
        return await self._batch(audio, deadline)

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
            self._connecting = None
        self._retire()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        self._segment.clear()

    # --- realtime, then batch -----------------------------------------------------------------------------

    async def _realtime(self, turn: Segment, deadline: float) -> str | None:
        """The final transcript from the socket, with one reconnect; None means "use the batch upload"."""
        if self._failed_turns >= MAX_FAILED_TURNS or self._closed:
            return None
        link = self._link if self._link is not None and self._link.up else None
        if link is not None:
            link.send({"type": "input_audio_buffer.commit"})
            text = await self._await_final(turn, deadline)
            if text is not None:
                return text
            self._retire()
        elif self._connecting is None:
            self._log.info("stt_realtime_reconnect", reason="no socket at commit")
        link = await self._ensure_link(deadline)
        if link is None:
            return None
        return await self._await_final(turn, deadline)

    async def _await_final(self, turn: Segment, deadline: float) -> str | None:
        loop = asyncio.get_running_loop()
        wait_s = min(self._engine.final_budget_s, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait_s, 0.0)):
                return await asyncio.shield(turn.done)
        except TimeoutError:
            reason = "no final transcript in time"
        except ProviderError as exc:
            reason = exc.detail
        self._log.warning("stt_realtime_failed", reason=reason, partial_chars=len(turn.text))
        turn.restart()
        return None

    async def _batch(self, audio: bytes, deadline: float) -> Transcript:
        remaining = deadline - asyncio.get_running_loop().time()
        self._log.info(
            "stt_batch_fallback", audio_ms=len(audio) // BYTES_PER_MS, time_left_ms=int(remaining * 1000)
        )
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                return await self._engine.fallback.transcribe(Utterance(ulaw_to_pcm16(audio)))
        except TimeoutError:
            raise ProviderError("stt", "no transcript within the budget", retryable=True) from None

    # --- the socket ---------------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Sends the unsent tail of the segment as one append (the ~100 ms batching)."""
        if self._unsent and self._link is not None:
            self._link.send(append_event(self._segment[len(self._segment) - self._unsent :]))
        self._unsent = 0

    def _retire(self) -> None:
        """Closes the current link in the background: a stalled server must not hold up the turn."""
        link, self._link = self._link, None
        if link is not None:
            task = asyncio.create_task(link.close(), name="stt_realtime_retire")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _ensure_link(self, deadline: float) -> RealtimeLink | None:
        """The live link, connecting (or joining a connect under way) within ``deadline``; None if down."""
        if self._link is not None and self._link.up:
            return self._link
        self._retire()  # a lost link's socket is closed already; this ends its tasks and bookkeeping
        if self._closed:
            return None
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._open(), name="stt_realtime_connect")
        connecting = self._connecting
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        try:
            async with asyncio.timeout(remaining):
                return await asyncio.shield(connecting)
        except TimeoutError:
            self._log.warning("stt_realtime_connect_failed", reason="timed out")
            connecting.cancel()
            return None
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> RealtimeLink | None:
        try:
            manager = self._client.realtime.connect(extra_query={"intent": "transcription"})
            conn = await manager.enter()
        except Exception as exc:  # noqa: BLE001 - a refused or failed socket means the batch path
            self._log.warning("stt_realtime_connect_failed", reason=classify(exc, "stt").detail)
            return None
        link = RealtimeLink(conn)
        link.send({"type": "session.update", "session": self._engine.session_config()})
        # Catch-up, in one synchronous block so no frame slips between: the segment under commit (and its
        # commit) if there is one, then what was fed since; what is still unsent goes out with the next flush.
        turn = self._turn
        if turn is not None:
            for at in range(0, len(turn.audio), self._chunk):
                link.send(append_event(turn.audio[at : at + self._chunk]))
            link.send({"type": "input_audio_buffer.commit"})
        sent = len(self._segment) - self._unsent
        for at in range(0, sent, self._chunk):
            link.send(append_event(self._segment[at : min(at + self._chunk, sent)]))
        link.run(self._on_event, self._lost, logger=self._log)
        self._link = link
        self._log.info("stt_realtime_connected")
        return link

    def _on_event(self, link: RealtimeLink, event: dict[str, Any]) -> None:
        if link is not self._link:
            return  # a late answer on a socket already given up
        if event.get("type") == "error":
            self._log.warning("stt_realtime_error", message=error_message(event))
        turn = self._turn
        if turn is None:
            return
        partial = turn.apply(event)
        if partial is not None and self.on_partial is not None:
            try:
                self.on_partial(partial)
            except Exception:  # noqa: BLE001 - a listener's bug must not cost the call its transcript
                self._log.exception("stt_partial_handler_failed")

    def _lost(self, link: RealtimeLink, reason: str) -> None:
        if not link.up:
            return
        link.up = False
        if self._link is link:
            self._log.warning("stt_realtime_lost", reason=reason)
            if self._turn is not None:
                self._turn.fail(reason)
