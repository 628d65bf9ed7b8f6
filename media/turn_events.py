"""What the turn detector tells the session: onsets, barge-ins, discarded sounds, pauses and ends of turn.

Plain frozen records with stream times in milliseconds (bytes / 8 of the caller's audio), so a session, a
test or a benchmark can compare them exactly; ``media.turns`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.endpointing import Completion
from media.speech import Utterance

__all__ = ["BargeIn", "SpeechDiscarded", "SpeechEnded", "SpeechPaused", "SpeechStarted", "TurnEvent"]


@dataclass(frozen=True)
class SpeechStarted:
    """Tentative onset after ``speech_confirm_ms`` of voice; ``at_ms`` is the stream time of the onset."""

    at_ms: int


@dataclass(frozen=True)
class BargeIn:
    """While the bot spoke, the caller really interrupts: ``barge_in_ms`` of speech, or words that claim the
    floor (``TurnDetector.confirm``). ``at_ms`` = decided, ``onset_ms`` = when that speech began."""

    at_ms: int
    onset_ms: int = 0
    reason: str = "duration"
    claims_floor: bool = False
    """The words were a stop word ("Stopp", "Moment"): an interruption, never a continuation of the turn."""


@dataclass(frozen=True)
class SpeechDiscarded:
    """A segment that is not a turn: too short, or a backchannel while the bot spoke.

    ``utterance`` holds its audio, should the session want to check a short "Stopp!" with STT.
    """

    at_ms: int
    duration_ms: int
    utterance: Utterance | None = None


@dataclass(frozen=True)
class SpeechEnded:
    """End of turn, decided at ``at_ms``; ``speech_end_ms`` is the end of the last voiced frame.

    ``utterance`` starts ``preroll_ms`` before the onset, so a soft first syllable is kept. ``reason`` says
    why the turn ended here (for the log and the console) and ``waited_ms`` how much silence that took.
    """

    at_ms: int
    utterance: Utterance
    speech_end_ms: int
    reason: str = "silence"
    waited_ms: int = 0
    verdict: Completion | None = None
    """The end-of-turn judge's verdict on this pause; None when silence alone decided."""


@dataclass(frozen=True)
class SpeechPaused:
    """The caller has been silent for ``eager_eot_ms``: probably the end of the turn, not yet certain.

    ``utterance`` is byte for byte what ``SpeechEnded`` will carry if the silence lasts, so a session may
    start transcribing now and use the result only if it does (speculative STT, hidden in the wait).
    """

    at_ms: int
    utterance: Utterance
    speech_end_ms: int


TurnEvent = SpeechStarted | BargeIn | SpeechDiscarded | SpeechPaused | SpeechEnded
