"""Small frozen facts a call session emits; the console, the call store and the logs subscribe to them.

Events carry no references to live objects, so they can be serialized, queued and dropped freely.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    call_sid: str
    at: float = field(default_factory=_now)
    kind: str = "event"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(CallEvent):
    kind: str = "call_started"
    stream_sid: str = ""
    caller: str = ""
    """Already masked: events may reach browsers and logs."""
    transport: str = "twilio"


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged(CallEvent):
    kind: str = "state_changed"
    source: str = ""
    dest: str = ""
    trigger: str = ""
    monotonic: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptEvent(CallEvent):
    """A finished turn. For an interrupted bot turn ``text`` is what was heard and ``cut`` the rest."""

    kind: str = "transcript"
    role: Literal["caller", "bot"] = "caller"
    text: str = ""
    cut: str = ""
    turn: int = 0
    interrupted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BotSentence(CallEvent):
    kind: str = "bot_sentence"
    text: str = ""
    turn: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolEvent(CallEvent):
    """Wire-level facts worth seeing in the console: marks, clears, DTMF, malformed input."""

    kind: str = "protocol"
    name: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnDecision(CallEvent):
    """Why the bot waits through a pause, or why it took the turn as over: every end-of-turn decision.

    ``ended`` False: the judge's verdict on a pause, which sets how long that pause may last (``hold_ms``).
    ``ended`` True: the turn ended after ``waited_ms`` of silence (stream time); ``verdict`` is "silence"
    when no verdict had arrived and the silence fallback decided.
    """

    kind: str = "turn_decision"
    ended: bool = False
    verdict: str = ""
    """complete, unsure, incomplete, or silence."""
    reason: str = ""
    hold_ms: int = 0
    waited_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechActivity(CallEvent):
    kind: str = "speech"
    speaking: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnLatency(CallEvent):
    """Milliseconds from the end of the caller's speech to each stage of the reply (None: not reached)."""

    kind: str = "latency"
    turn: int = 0
    transcript_ms: float | None = None
    llm_first_token_ms: float | None = None
    first_sentence_ms: float | None = None
    tts_first_byte_ms: float | None = None
    first_audio_ms: float | None = None
    playback_done_ms: float | None = None
    preemptive_saved_ms: float | None = None
    """Set when the reply was started at a pause before the turn ended: how much earlier (ms)."""

    @property
    def voice_to_voice_ms(self) -> float | None:
        return self.first_audio_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class CallError(CallEvent):
    kind: str = "error"
    stage: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallEvent):
    kind: str = "call_ended"
    reason: str = ""
    duration_s: float = 0.0


class EventSink(Protocol):
    """Receives every event of every call. ``publish`` must never block or raise into the call."""

    def publish(self, event: CallEvent) -> None: ...


class NullSink:
    def publish(self, event: CallEvent) -> None:
        return None


class FanoutSink:
    """Publishes to several sinks; a failing subscriber never reaches the call."""

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = list(sinks)

    def add(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def publish(self, event: CallEvent) -> None:
        for sink in self._sinks:
            try:
                sink.publish(event)
            except Exception:  # noqa: BLE001 - a broken subscriber must not end a phone call
                import structlog

                structlog.get_logger().exception("event_sink_failed", sink=type(sink).__name__)
