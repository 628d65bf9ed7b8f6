"""What the call session needs from whatever carries the audio (Twilio, or the browser console).

Both speak the Media Streams protocol, so the session cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class CallTransport(Protocol):
    """Outbound half of a media stream. Methods never block on the network for long: they queue."""

    async def send_audio(self, ulaw: bytes) -> None:
        """Queue raw 8 kHz μ-law for playback (no header)."""

    async def send_mark(self, name: str) -> None:
        """Ask the far end to echo ``name`` once everything queued before it has been played."""

    async def clear(self) -> None:
        """Drop all buffered audio at the far end; pending marks come back at once."""

    async def close(self) -> None:
        """End the stream (for Twilio this ends the call when nothing follows ``<Connect>``)."""


class CallControl(Protocol):
    """Bot-side control of the phone call itself, beyond the audio stream (Twilio REST, or the browser)."""

    async def hangup(self, call_sid: str) -> None: ...

    async def transfer(self, call_sid: str, number: str) -> bool:
        """Hand the caller to ``number``; False when this transport cannot transfer."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    """What the ``start`` message told us. ``custom_parameters`` are the TwiML ``<Parameter>``s."""

    call_sid: str
    stream_sid: str
    account_sid: str = ""
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    transport: str = "twilio"


class StreamHandler(Protocol):
    """The receiving half of a media stream, implemented by the call session.

    The WebSocket endpoint parses the wire messages and calls these in arrival order. ``on_audio`` runs
    50 times a second per call and never suspends: it buffers and analyses, and a frame that ends a turn
    event (speech started or ended, a barge-in) runs its transition right there, whose effects only start
    or cancel tasks. Handing those to a task of their own cost a pass of the event loop each, which with
    two hundred calls delayed the ``clear`` of a barge-in by tens of milliseconds; and being synchronous,
    it can be called from the socket's read callback (``web.media_protocol``), with no task per frame.
    """

    async def on_start(self, start: StreamStart) -> None: ...

    def on_audio(self, ulaw: bytes) -> None: ...

    async def on_dtmf(self, digit: str) -> None: ...

    async def on_mark(self, name: str) -> None: ...

    async def on_stop(self, reason: str) -> None:
        """The stream ended: ``stop`` received, socket closed without it, or an error. Idempotent."""
