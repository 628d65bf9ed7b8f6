"""What a simulated call observed, with timestamps, for tests and the latency benchmark.

Times are ``time.monotonic()`` seconds (real time, even when audio is fast-forwarded): the bot's work is
real, so its latencies are measured on the real clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simulator.playout import Gap


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
    rung_at: float | None = None
    """When ``/voice`` was posted (the phone rang): the greeting's latency runs from here."""
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


def reply_of(mark: str) -> str:
    """The reply a mark belongs to, by the ``<tag>-<n>`` convention (``t3-7`` → ``t3``); else the name."""
    head, sep, _tail = mark.rpartition("-")
    return head if sep and head else mark


def underruns(
    gaps: Iterable[Gap],
    utterances: Iterable[Utterance],
    *,
    min_gap_s: float = 0.02,
    caller_grace_s: float = 1.0,
) -> list[Gap]:
    """The gaps that are underruns: playback ran dry while the bot was mid-reply.

    Mid-reply means the gap fell inside one segment (no mark between the audio on either side), or between
    two marks of the same reply (``reply_of``). Gaps shorter than ``min_gap_s`` (one frame) are jitter, not
    silence a caller hears. Gaps overlapping caller speech over the bot's audio (from its start until the
    ``clear``, or ``caller_grace_s`` after its end) are the bot pausing for a possible barge-in, by design.
    """
    speech = [_paused_for(u, caller_grace_s) for u in utterances if u.over_bot_audio]
    found = []
    for gap in gaps:
        if gap.seconds < min_gap_s:
            continue
        if gap.mark_before is not None and (
            gap.mark_after is None or reply_of(gap.mark_before) != reply_of(gap.mark_after)
        ):
            continue
        start, end = gap.resumed_at - gap.seconds, gap.resumed_at
        if any(s < end and start < e for s, e in speech):
            continue
        found.append(gap)
    return found


def _paused_for(utt: Utterance, grace_s: float) -> tuple[float, float]:
    """When the bot may keep quiet for this caller speech: until its ``clear`` (the reply is over), else until
    ``grace_s`` after the caller stopped (a backchannel: the bot resumes once it knows)."""
    if utt.clear_at is not None and utt.clear_at >= utt.started_at:
        return utt.started_at, utt.clear_at
    end = utt.ended_at if utt.ended_at is not None else float("inf")
    return utt.started_at, end + grace_s
