"""Folds a call's events into what the console shows; the same fold replays stored calls for history pages.

Every list is bounded so a long call watched for hours costs a fixed amount of memory; the call store, not
this view, is the complete record.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from dialogue.events import (
    BotSentence,
    CallEnded,
    CallError,
    CallEvent,
    CallStarted,
    ProtocolEvent,
    SpeechActivity,
    StateChanged,
    TranscriptEvent,
    TurnDecision,
    TurnLatency,
)

LATENCY_STAGES: Final = (
    ("transcript_ms", "STT"),
    ("llm_first_token_ms", "LLM first token"),
    ("first_sentence_ms", "first sentence"),
    ("tts_first_byte_ms", "TTS first byte"),
    ("first_audio_ms", "first audio"),
)
"""Stages drawn in the waterfall, in order; ``playback_done_ms`` is listed, not drawn (it dwarfs the rest)."""

_MAX_ROWS: Final = 300
_DIGIT = re.compile(r"\d")


def mask_number(number: str, keep: int = 3) -> str:
    """Defence in depth: events should carry masked numbers already, but a full one never reaches a page."""
    if len(_DIGIT.findall(number)) <= keep + 3:
        return number
    digits = 0
    total = len(_DIGIT.findall(number))
    out = []
    for ch in number:
        if ch.isdigit():
            digits += 1
            out.append(ch if digits > total - keep else "•")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(slots=True)
class TurnRow:
    role: str
    text: str
    turn: int
    at: float
    cut: str = ""
    interrupted: bool = False
    pending: bool = False
    """A bot reply still being spoken: its sentences so far, replaced by the finished turn."""


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    start_ms: float
    end_ms: float


@dataclass(slots=True)
class LatencyRow:
    turn: int
    stages: dict[str, float | None]

    @property
    def voice_to_voice_ms(self) -> float | None:
        return self.stages.get("first_audio_ms")

    @property
    def playback_done_ms(self) -> float | None:
        return self.stages.get("playback_done_ms")

    @property
    def preemptive_saved_ms(self) -> float | None:
        """Set for a reply started at a pause before the turn ended: how much earlier it was asked for."""
        return self.stages.get("preemptive_saved_ms")

    def bars(self) -> list[Bar]:
        """Waterfall segments: each stage runs from the previous stage reached to its own time."""
        bars: list[Bar] = []
        previous = 0.0
        for key, label in LATENCY_STAGES:
            value = self.stages.get(key)
            if value is None:
                continue
            bars.append(Bar(label, previous, max(value, previous)))
            previous = max(value, previous)
        return bars


@dataclass(frozen=True, slots=True)
class TransitionRow:
    at: float
    source: str
    dest: str
    trigger: str


@dataclass(frozen=True, slots=True)
class ProtocolRow:
    at: float
    name: str
    detail: str
    error: bool = False


def _turn_decision(event: TurnDecision) -> tuple[str, str]:
    """A row of the protocol log: the end-of-turn judge's verdict on a pause, or why the turn ended."""
    if event.ended:
        return "turn ended", f"after {event.waited_ms} ms of silence ({event.reason})"
    if event.verdict in ("backchannel", "interruption"):
        return f"over the bot: {event.verdict}", event.reason
    return f"pause: {event.verdict}", f"{event.reason}; wait up to {event.hold_ms} ms"


@dataclass(slots=True)
class CallView:
    call_sid: str
    stream_sid: str = ""
    caller: str = ""
    transport: str = ""
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    end_reason: str = ""
    state: str = "greeting"
    transitions: deque[TransitionRow] = field(default_factory=lambda: deque(maxlen=_MAX_ROWS))
    transcript: deque[TurnRow] = field(default_factory=lambda: deque(maxlen=_MAX_ROWS))
    latencies: deque[LatencyRow] = field(default_factory=lambda: deque(maxlen=_MAX_ROWS))
    protocol: deque[ProtocolRow] = field(default_factory=lambda: deque(maxlen=_MAX_ROWS))
    speech: deque[tuple[float, float | None]] = field(default_factory=lambda: deque(maxlen=_MAX_ROWS))
    """Caller speech intervals (start, end); end is None while the caller is talking."""
    errors: int = 0
    last_event_at: float = 0.0

    @property
    def live(self) -> bool:
        return self.ended_at is None

    @property
    def caller_turns(self) -> int:
        return sum(1 for t in self.transcript if t.role == "caller")

    @property
    def last_latency_ms(self) -> float | None:
        for row in reversed(self.latencies):
            if row.voice_to_voice_ms is not None:
                return row.voice_to_voice_ms
        return None

    @property
    def caller_speaking(self) -> bool:
        return bool(self.speech) and self.speech[-1][1] is None

    def duration_s(self, now: float | None = None) -> float:
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

    def apply(self, event: CallEvent) -> None:
        self.last_event_at = max(self.last_event_at, event.at)
        if isinstance(event, CallStarted):
            self.stream_sid, self.caller = event.stream_sid, mask_number(event.caller)
            self.transport, self.started_at = event.transport, event.at
        elif isinstance(event, StateChanged):
            self.state = event.dest
            self.transitions.append(TransitionRow(event.at, event.source, event.dest, event.trigger))
        elif isinstance(event, BotSentence):
            self._bot_sentence(event)
        elif isinstance(event, TranscriptEvent):
            self._finished_turn(event)
        elif isinstance(event, TurnLatency):
            self._latency(event)
        elif isinstance(event, SpeechActivity):
            self._speech(event)
        elif isinstance(event, ProtocolEvent):
            self.protocol.append(ProtocolRow(event.at, event.name, event.detail))
        elif isinstance(event, TurnDecision):
            self.protocol.append(ProtocolRow(event.at, *_turn_decision(event)))
        elif isinstance(event, CallError):
            self.errors += 1
            self.protocol.append(ProtocolRow(event.at, f"error: {event.stage}", event.detail, error=True))
        elif isinstance(event, CallEnded):
            self.ended_at, self.end_reason = event.at, event.reason
            if self.speech and self.speech[-1][1] is None:
                self.speech[-1] = (self.speech[-1][0], event.at)
            self.transcript = deque((t for t in self.transcript if not t.pending), maxlen=_MAX_ROWS)

    def _bot_sentence(self, event: BotSentence) -> None:
        last = self.transcript[-1] if self.transcript else None
        if last is not None and last.pending and last.turn == event.turn:
            last.text = f"{last.text} {event.text}".strip()
        else:
            self.transcript.append(TurnRow("bot", event.text, event.turn, event.at, pending=True))

    def _finished_turn(self, event: TranscriptEvent) -> None:
        row = TurnRow(event.role, event.text, event.turn, event.at, event.cut, event.interrupted)
        if event.role == "bot":
            for i in range(len(self.transcript) - 1, -1, -1):
                if self.transcript[i].pending and self.transcript[i].turn == event.turn:
                    self.transcript[i] = row
                    return
        self.transcript.append(row)

    def _latency(self, event: TurnLatency) -> None:
        stages = {
            key: getattr(event, key)
            for key in (*(k for k, _ in LATENCY_STAGES), "playback_done_ms", "preemptive_saved_ms")
        }
        for row in self.latencies:
            if row.turn == event.turn:  # a later report for the same turn completes the earlier one
                row.stages.update({k: v for k, v in stages.items() if v is not None})
                return
        self.latencies.append(LatencyRow(event.turn, stages))

    def _speech(self, event: SpeechActivity) -> None:
        if event.speaking and not self.caller_speaking:
            self.speech.append((event.at, None))
        elif not event.speaking and self.caller_speaking:
            self.speech[-1] = (self.speech[-1][0], event.at)


def replay(call_sid: str, events: list[CallEvent]) -> CallView:
    """A stored call, rebuilt through the same fold the live page uses."""
    view = CallView(call_sid)
    for event in sorted(events, key=lambda e: e.at):
        view.apply(event)
    return view


def transcript_document(view: CallView) -> dict[str, object]:
    """The downloadable transcript: what was said, what was cut, and how long each reply took."""
    return {
        "call_sid": view.call_sid,
        "caller": view.caller,
        "transport": view.transport,
        "started_at": view.started_at,
        "ended_at": view.ended_at,
        "end_reason": view.end_reason,
        "turns": [
            {
                "turn": t.turn,
                "role": t.role,
                "text": t.text,
                "cut": t.cut,
                "interrupted": t.interrupted,
                "at": t.at,
            }
            for t in view.transcript
            if not t.pending
        ],
        "latency_ms": [{"turn": row.turn, **row.stages} for row in view.latencies],
    }
