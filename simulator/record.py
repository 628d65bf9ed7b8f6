"""What a simulated call observed, with timestamps, for tests and the latency benchmark.

Times are ``time.monotonic()`` seconds (real time, even when audio is fast-forwarded): the bot's work is
real, so its latencies are measured on the real clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Utterance:
    """One stretch of caller speech sent with ``send_utterance``."""

    started_at: float
    ended_at: float | None = None
    over_bot_audio: bool = False
    """The bot's audio was still playing when the caller started: a barge-in attempt."""
    first_audio_at: float | None = None
    """First bot audio message received after the utterance ended."""
    clear_at: float | None = None
    """First ``clear`` received after the utterance started."""

    @property
    def response_latency(self) -> float | None:
        if self.ended_at is None or self.first_audio_at is None:
            return None
        return self.first_audio_at - self.ended_at

    @property
    def barge_in_reaction(self) -> float | None:
        if not self.over_bot_audio or self.clear_at is None:
            return None
        return self.clear_at - self.started_at


@dataclass(frozen=True, slots=True)
class Echo:
    name: str
    at: float
    flushed: bool
    """Echoed because of a ``clear``, not because playback reached it."""


@dataclass(slots=True)
class CallRecord:
    audio_messages: int = 0
    audio_bytes: int = 0
    first_audio_at: float | None = None
    marks: list[tuple[float, str]] = field(default_factory=list)
    """Marks the bot sent, when they arrived."""
    echoes: list[Echo] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    utterances: list[Utterance] = field(default_factory=list)
    dtmf_sent: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    """Protocol breaches by the bot (bad JSON, wrong streamSid, WAV header, ...)."""
    frames_sent: int = 0
    closed_by_bot: bool = False
    close_code: int | None = None

    def echoed(self, name: str) -> Echo | None:
        return next((e for e in self.echoes if e.name == name), None)

    def response_latencies(self) -> list[float]:
        return [lat for u in self.utterances if (lat := u.response_latency) is not None]

    def barge_in_reactions(self) -> list[float]:
        return [r for u in self.utterances if (r := u.barge_in_reaction) is not None]
