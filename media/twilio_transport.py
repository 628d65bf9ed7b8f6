"""The outbound half of a Twilio media stream: audio, marks and clears as JSON text frames.

Chunking policy: audio is sent at once, split only into messages of at most ``CHUNK_BYTES`` (100 ms).
Twilio buffers whatever it receives and plays it in order, so the chunk size does not change when the
caller hears the first word; the session already paces audio in near real time with a short lead, which
is what bounds how much a ``clear`` has to flush. Smaller chunks (20 ms frames) would only multiply the
per-message cost (JSON, base64, a WebSocket frame, an event-loop turn) by five for every call; much larger
ones would approach Twilio's undocumented message-size limit. 100 ms is ~1.1 kB of base64 per message.
Nothing is held back for merging: buffering here would add latency and hide audio from ``clear``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from media.errors import ProtocolError
from media.twilio_outbound import clear_message, mark_message, media_message

log = structlog.get_logger()

CHUNK_BYTES = 800
"""100 ms of 8 kHz μ-law."""

SendText = Callable[[str], Awaitable[None]]
CloseStream = Callable[[], Awaitable[None]]


class StreamClosed(ProtocolError):
    """Raised by a ``SendText`` when the socket is gone; the transport then drops further output quietly."""


@dataclass(slots=True)
class TransportStats:
    bytes_sent: int = 0
    media_messages: int = 0
    marks_sent: int = 0
    clears_sent: int = 0
    bytes_dropped: int = 0
    """Audio offered after the stream closed (a hang-up mid-speech), counted instead of raised."""


class TwilioTransport:
    """``CallTransport`` for one Twilio stream; created after ``start``, when the ``streamSid`` is known."""

    def __init__(
        self,
        stream_sid: str,
        send_text: SendText,
        close_stream: CloseStream,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        on_first_audio: Callable[[], None] | None = None,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be positive")
        self.stream_sid = stream_sid
        self._send_text = send_text
        self._close_stream = close_stream
        self._chunk = chunk_bytes
        self._closed = False
        self._on_first_audio = on_first_audio
        """Called once, after the stream's first audio went out (the greeting: ``/metrics`` times it)."""
        self.stats = TransportStats()

    @property
    def closed(self) -> bool:
        return self._closed

    async def send_audio(self, ulaw: bytes) -> None:
        if ulaw[:4] == b"RIFF" and ulaw[8:12] == b"WAVE":
            # Twilio would play the 44 header bytes as a click and may mis-stream the rest.
            raise ProtocolError("outbound audio carries a WAV header; send raw μ-law only")
        view = memoryview(ulaw)
        for start in range(0, len(view), self._chunk):
            piece = bytes(view[start : start + self._chunk])
            if not await self._send(media_message(self.stream_sid, piece), audio_bytes=len(piece)):
                self.stats.bytes_dropped += len(view) - start - len(piece)
                return
            self.stats.media_messages += 1
            self.stats.bytes_sent += len(piece)
            if self._on_first_audio is not None:
                first, self._on_first_audio = self._on_first_audio, None
                first()

    async def send_mark(self, name: str) -> None:
        if await self._send(mark_message(self.stream_sid, name)):
            self.stats.marks_sent += 1

    async def clear(self) -> None:
        if await self._send(clear_message(self.stream_sid)):
            self.stats.clears_sent += 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(StreamClosed):
            await self._close_stream()

    async def _send(self, text: str, *, audio_bytes: int = 0) -> bool:
        if self._closed:
            self.stats.bytes_dropped += audio_bytes
            return False
        try:
            await self._send_text(text)
        except StreamClosed:
            self._closed = True
            self.stats.bytes_dropped += audio_bytes
            log.info("stream_send_after_close", detail="the socket is gone; further output is dropped")
            return False
        return True
