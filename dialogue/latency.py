"""Per-turn latency: every stage measured from the end of the caller's speech, on one monotonic clock.

``turn_latency`` turns a finished turn's clock into the event the console and the metrics read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dialogue.events import TurnLatency

STAGES = ("transcript", "llm_first_token", "first_sentence", "tts_first_byte", "first_audio", "playback_done")


@dataclass(slots=True)
class TurnClock:
    speech_end: float
    """Monotonic time of the end of the caller's last voiced frame (not when the silence timer fired)."""
    clock: Callable[[], float] = time.monotonic
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str) -> None:
        """Keeps the first time a stage is reached (later sentences do not move it)."""
        if stage not in self.marks:
            self.marks[stage] = (self.clock() - self.speech_end) * 1000

    def mark_at(self, stage: str, monotonic: float | None) -> None:
        """A stage reached earlier, by work done ahead of the turn (a preemptive reply), at its own time: the
        earlier of this and any mark already kept."""
        if monotonic is None:
            return
        ms = (monotonic - self.speech_end) * 1000
        self.marks[stage] = min(ms, self.marks.get(stage, ms))

    def ms(self, stage: str) -> float | None:
        value = self.marks.get(stage)
        return round(value, 1) if value is not None else None


def turn_latency(
    call_sid: str, turn: int, clock: TurnClock, preemptive_saved_ms: float | None
) -> TurnLatency:
    """The event that publishes one turn's clock: each stage's milliseconds, None where it was not reached."""
    return TurnLatency(
        call_sid=call_sid,
        turn=turn,
        transcript_ms=clock.ms("transcript"),
        llm_first_token_ms=clock.ms("llm_first_token"),
        first_sentence_ms=clock.ms("first_sentence"),
        tts_first_byte_ms=clock.ms("tts_first_byte"),
        first_audio_ms=clock.ms("first_audio"),
        playback_done_ms=clock.ms("playback_done"),
        preemptive_saved_ms=preemptive_saved_ms,
    )
