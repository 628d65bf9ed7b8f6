"""The messages Twilio sends on a Media Streams socket, as typed values: what each event carries.

Kept apart from ``media.twilio_protocol``, which turns a text frame into one of these with Twilio's quirks
and checks: code that only reads a message (the media socket's dispatch, the stream's admission) needs
the shapes, not the parsing rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from media.transport import StreamStart


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str
    event: Literal["connected"] = "connected"


@dataclass(frozen=True, slots=True)
class Start:
    sequence: int
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: Mapping[str, str]
    encoding: str
    sample_rate: int
    channels: int
    event: Literal["start"] = "start"

    @property
    def is_mulaw_8k_mono(self) -> bool:
        return (self.encoding, self.sample_rate, self.channels) == ("audio/x-mulaw", 8000, 1)

    def to_stream_start(self) -> StreamStart:
        return StreamStart(
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            account_sid=self.account_sid,
            custom_parameters=dict(self.custom_parameters),
        )


@dataclass(slots=True)  # not frozen: built 50 times a second per call, and a frozen dataclass sets each
class Media:  # field through object.__setattr__, which cost more than decoding the JSON.
    sequence: int
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes
    event: Literal["media"] = "media"


@dataclass(frozen=True, slots=True)
class Dtmf:
    sequence: int
    stream_sid: str
    track: str
    digit: str
    event: Literal["dtmf"] = "dtmf"


@dataclass(frozen=True, slots=True)
class Mark:
    sequence: int
    stream_sid: str
    name: str
    event: Literal["mark"] = "mark"


@dataclass(frozen=True, slots=True)
class Stop:
    sequence: int
    stream_sid: str
    call_sid: str
    account_sid: str
    event: Literal["stop"] = "stop"


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event name we do not know: Twilio may add events, so this is logged and ignored, not an error."""

    name: str
    sequence: int | None = None
    keys: tuple[str, ...] = field(default_factory=tuple)
    event: Literal["unknown"] = "unknown"


InboundMessage = Connected | Start | Media | Dtmf | Mark | Stop | UnknownEvent
