"""A stand-in call session for edge tests: records what the stream delivers, plays a little audio back.

Behaviour, so tests can drive it from the caller's side:
- on ``start``: plays ``greeting_ms`` of audio followed by the mark ``greeting``;
- DTMF ``1``: plays another ``reply_ms`` piece with mark ``reply-N``;
- DTMF ``2``: barge-in, sends ``clear``;
- DTMF ``9``: hangs up through ``CallControl``; DTMF ``0``: transfers to ``transfer_number``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from media.transport import CallControl, CallTransport, StreamHandler, StreamStart

TONE = bytes(range(0x10, 0x70))  # any non-silent μ-law; its content does not matter here


def speech(ms: int) -> bytes:
    n = 8 * ms
    return (TONE * (n // len(TONE) + 1))[:n]


@dataclass
class RecordingHandler:
    transport: CallTransport
    control: CallControl
    start: StreamStart
    greeting_ms: int = 300
    reply_ms: int = 500
    transfer_number: str = "+4989111222"
    starts: int = 0
    frames: int = 0
    audio_bytes: int = 0
    dtmf: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    replies: int = 0
    transfer_result: bool | None = None
    errors: list[str] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    fail_at_frame: int | None = None
    """Raise on this frame, as a bug in the session would."""
    frames_in_a_task: int = 0
    """Frames delivered by the socket's task (``receive()``) rather than its read callback."""
    frame_call_sids: set[object] = field(default_factory=set)
    """The ``call_sid`` bound in structlog's context while each frame was handled."""

    async def on_start(self, start: StreamStart) -> None:
        self.starts += 1
        if self.greeting_ms:
            await self.transport.send_audio(speech(self.greeting_ms))
            await self.transport.send_mark("greeting")

    def on_audio(self, ulaw: bytes) -> None:
        self.frames += 1
        self.audio_bytes += len(ulaw)
        self.frames_in_a_task += asyncio.current_task() is not None
        self.frame_call_sids.add(structlog.contextvars.get_contextvars().get("call_sid"))
        if self.frames == self.fail_at_frame:
            raise RuntimeError("a bug in the session")

    async def on_dtmf(self, digit: str) -> None:
        self.dtmf.append(digit)
        if digit == "1":
            self.replies += 1
            await self.transport.send_audio(speech(self.reply_ms))
            await self.transport.send_mark(f"reply-{self.replies}")
        elif digit == "2":
            await self.transport.clear()
        elif digit == "9":
            await self.control.hangup(self.start.call_sid)
        elif digit == "0":
            self.transfer_result = await self.control.transfer(self.start.call_sid, self.transfer_number)

    async def on_mark(self, name: str) -> None:
        self.marks.append(name)

    async def on_stop(self, reason: str) -> None:
        self.stops.append(reason)
        self.stopped.set()


@dataclass
class RecordingFactory:
    """Pass as ``create_app(..., session_factory=factory)``; ``handlers`` lists every call's handler."""

    greeting_ms: int = 300
    reply_ms: int = 500
    fail_at_frame: int | None = None
    handlers: list[RecordingHandler] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, transport: CallTransport, control: CallControl, start: StreamStart) -> StreamHandler:
        handler = RecordingHandler(
            transport,
            control,
            start,
            greeting_ms=self.greeting_ms,
            reply_ms=self.reply_ms,
            fail_at_frame=self.fail_at_frame,
        )
        self.handlers.append(handler)
        self.arrived.set()
        return handler

    async def for_call(self, call_sid: str, timeout_s: float = 5.0) -> RecordingHandler:
        """The handler of ``call_sid``, once the bot has processed that stream's ``start``."""
        async with asyncio.timeout(timeout_s):
            while True:
                for handler in self.handlers:
                    if handler.start.call_sid == call_sid:
                        return handler
                self.arrived.clear()
                await self.arrived.wait()
