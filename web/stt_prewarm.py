"""Opens a call's streaming transcriber while the phone still rings, so the first turn finds it connected.

``/voice`` answers Twilio with TwiML and the media stream arrives a few hundred milliseconds later: time
enough for the TLS and WebSocket handshakes to the transcription service, which would otherwise fall into
the caller's first turn. ``/voice`` calls ``ring(call_sid)``; the media session calls ``take(call_sid)`` and
owns (and closes) what it gets. A transcriber nobody takes within ``ttl_s`` (the caller hung up while it
rang, the stream never came) is closed, so no socket outlives its call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar, Final

import structlog

from media.streaming_stt import BufferedSTT, StreamingSTT, StreamingTranscriber
from web.context import AppContext

log = structlog.get_logger()

TTL_S: Final = 15.0
"""A stream starts well within a second of ``/voice``; fifteen seconds cover any slow Twilio edge."""


@dataclass(slots=True)
class _Ringing:
    transcriber: StreamingTranscriber
    starting: asyncio.Task[None]
    expiry: asyncio.TimerHandle


class SttPrewarm:
    """Transcribers opened at ``/voice``, keyed by CallSid, until the media session takes them."""

    EXTRAS_KEY: ClassVar[str] = "stt_prewarm"

    def __init__(self, engine: StreamingSTT, *, ttl_s: float = TTL_S) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._ringing: dict[str, _Ringing] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, ctx: AppContext) -> SttPrewarm | None:
        """The app's registry, made on first use; None when the engine has nothing to warm."""
        found = ctx.extras.get(cls.EXTRAS_KEY)
        if isinstance(found, SttPrewarm):
            return found
        engine = ctx.providers.streaming_stt
        if engine is None or isinstance(engine, BufferedSTT):
            return None
        prewarm = cls(engine)
        ctx.extras[cls.EXTRAS_KEY] = prewarm
        ctx.providers.closers.append(prewarm.aclose)
        return prewarm

    def __len__(self) -> int:
        return len(self._ringing)

    def ring(self, call_sid: str) -> None:
        """Starts connecting the call's transcriber in the background; a repeated CallSid is ignored."""
        if call_sid in self._ringing:
            return
        transcriber = self.engine.open_call(call_sid)
        loop = asyncio.get_running_loop()
        starting = loop.create_task(transcriber.start(), name="stt_prewarm_start")
        expiry = loop.call_later(self.ttl_s, self._expire, call_sid)
        self._ringing[call_sid] = _Ringing(transcriber, starting, expiry)

    def take(self, call_sid: str) -> StreamingTranscriber:
        """The call's transcriber: the warm one if ``/voice`` opened it, else a new one (not yet started)."""
        ringing = self._ringing.pop(call_sid, None)
        if ringing is None:
            return self.engine.open_call(call_sid)
        ringing.expiry.cancel()
        return ringing.transcriber

    def release(self, call_sid: str) -> None:
        """Closes a warm transcriber the session will not use."""
        ringing = self._ringing.pop(call_sid, None)
        if ringing is not None:
            ringing.expiry.cancel()
            self._close(ringing)

    def _expire(self, call_sid: str) -> None:
        ringing = self._ringing.pop(call_sid, None)
        if ringing is not None:
            log.info("stt_prewarm_expired", call_sid=call_sid, ttl_s=self.ttl_s)
            self._close(ringing)

    def _close(self, ringing: _Ringing) -> None:
        task = asyncio.get_running_loop().create_task(ringing.transcriber.close(), name="stt_prewarm_close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for call_sid in list(self._ringing):
            self.release(call_sid)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
