"""The turn detector's knobs: each default with the measurement behind it, checked when built.

Apart from ``media.turns`` so that module holds the per-frame state machine and this one the settings a
session, a benchmark or a test builds (``silence_for`` gives the silence that ends a pause the end-of-turn
judge called complete, a statement, unsure or unfinished). ``media.turns`` re-exports ``TurnConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from media.codec import FRAME_MS
from media.echo import EchoConfig
from media.endpointing import Completion
from media.errors import ConfigError

__all__ = ["TurnConfig"]


@dataclass(frozen=True)
class TurnConfig:
    """Turn-taking knobs. Defaults are measured in ``tests/media/test_turns.py`` on eSpeak German at 8 kHz
    through WebRTC VAD (aggressiveness 2), whose ~100 ms hangover is part of every silence below.
    """

    end_of_turn_silence_ms: int = 500
    """Silence after the last voiced frame that ends a turn. Sentence pauses inside one turn measured
    120-240 ms (VAD view), so 500 ms leaves room for a human's longer pause. In line noise the VAD's
    hangover adds up to ~120 ms (measured), so the caller hears 500-620 ms of silence before the bot
    reacts: LiveKit waits 0.55 s, OpenAI 0.5 s, and Pipecat's old 0.8 s was what users called sluggish."""
    preroll_ms: int = 300
    """Audio kept before the onset: the VAD confirms voiced frames, and a soft onset ("f", "h", "sch") is
    quieter than the floor or the VAD; 300 ms is OpenAI's prefix and costs 4.8 kB per utterance."""
    min_utterance_ms: int = 250
    """Shorter voiced segments are clicks, pops and knocks, not words: a 100 ms click is discarded, while
    "ja" reads 400 ms (eSpeak) and a quick human "ja" ~200-300 ms. A 250 ms cough still passes as a turn
    when the bot is silent (STT then returns nothing); while the bot speaks it is a backchannel."""
    max_utterance_ms: int = 30000
    """Forced end: a caller reading out a long text, or a TV in the room, must not hold the line forever."""
    barge_in_ms: int = 800
    """Caller speech while the bot speaks that cancels the answer. The listed backchannels measured
    480-700 ms (VAD view, "mhm" the longest); 800 ms clears them. It costs little: the bot already stopped
    feeding audio at ``SpeechStarted``, so the caller hears it stop ~100 ms after the onset either way."""
    vad_aggressiveness: int = 2
    """Measured: 0-3 all voice >80 % of frames of speech at -30 dBFS and none of -40 dBFS noise after the
    first 80 ms; 3 split a word inside a sentence, 0-1 bridged sentence pauses; -30 dBFS white noise is
    voiced at 2, so a caller in loud noise needs 3 (settable)."""
    speech_confirm_ms: int = 100
    """Voiced frames in a row before ``SpeechStarted``: WebRTC VAD calls the first 80 ms of a fresh noise
    floor speech while its noise model settles."""
    eager_eot_ms: int = 100
    """Silence after which ``SpeechPaused`` offers the utterance for transcription and the end-of-turn
    judge (0: never). The session judges every pause (``judge_pause``), so the earlier the verdict, the
    earlier a complete turn ends: with a 100 ms transcriber the verdict comes 200 ms into the silence, and
    ``python -m bench.turn_taking`` measured a mean delay of 385 ms at 3.8 % cut-offs (eager 200: ~470 ms).
    Eager 100 + STT up to 300 ms still lands before the 500 ms silence fallback. The price: short pauses
    inside a sentence (measured 120–240 ms with VAD hangover) are transcribed too, roughly doubling the
    speculative STT requests; one still in flight when the caller speaks on is simply not used."""
    end_of_turn_complete_ms: int = 200
    """Silence that ends a turn the end-of-turn judge called complete ("Nein, danke.", a question). It is
    reached before the judge's transcript arrives (``eager_eot_ms`` + STT), so the turn ends the moment
    the verdict does; shorter would only matter for a transcriber faster than 100 ms after the pause."""
    end_of_turn_statement_ms: int = 200
    """Silence that ends a turn the judge called a whole statement ("Ich möchte einen Umzug melden."). A
    statement is often only the topic, and a question may follow after a sentence pause (eSpeak: 300+ ms).
    At 500 ms (the last session's choice) such a question was never cut off, but every statement waited the
    classic silence. Since speech over the reply's first words continues the turn (``continue_within_ms``)
    instead of being dropped as a backchannel, the question is merged into one turn either way, so
    statements take the strong cues' 200 ms: ``python -m bench.turn_taking`` measured it (README)."""
    end_of_turn_unsure_ms: int = 700
    """Silence for an ``unsure`` verdict: a dictation of unknown length, a possible verb particle ("Ich
    rufe an"). Bridges the pauses between digit groups (measured 300-700 ms in the bench corpus)."""
    end_of_turn_hold_ms: int = 1500
    """The longest the bot listens through a pause after an unfinished sentence ("mit", "dass", "ähm",
    "Die Nummer ist"): real German pauses reach 1.5 s (eot-bench). Longer silence ends the turn anyway,
    so a caller who gives up mid-sentence is answered."""
    backchannel_gap_ms: int = 300
    """While the bot speaks: silence that ends an interruption candidate as a backchannel, so the bot
    resumes after a "mhm" within ~300 ms instead of waiting a whole end-of-turn silence."""
    continue_within_ms: int = 1000
    """Speech (not a stop word) that began before the reply to the caller's turn had played this long
    continues that turn: one user message, the reply cleared. A caller who goes on after a pause starts
    over the bot's first words (the bot began in the pause) or just before them; after a second of the
    answer (two or three words), speech over it is a reaction to what the bot said, so it interrupts and
    the history keeps what was heard."""
    energy_floor_db: float = -55.0
    """Frames quieter than this (mean power, dBFS) are silence without asking the VAD: line hiss."""
    echo: EchoConfig = field(default_factory=EchoConfig)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_ms") and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"turn setting {f.name} must be a non-negative integer, got {value!r}")
        if self.vad_aggressiveness not in range(4):
            raise ConfigError(f"vad_aggressiveness must be 0..3, got {self.vad_aggressiveness}")
        if self.min_utterance_ms < 100:
            raise ConfigError("min_utterance_ms below 100 would send STT audio it rejects (< 0.1 s)")
        if self.max_utterance_ms <= self.min_utterance_ms or self.speech_confirm_ms < FRAME_MS:
            raise ConfigError("need speech_confirm_ms >= 20 and max_utterance_ms > min_utterance_ms")
        if not self.end_of_turn_complete_ms <= self.end_of_turn_unsure_ms <= self.end_of_turn_hold_ms:
            raise ConfigError("need end_of_turn_complete_ms <= end_of_turn_unsure_ms <= end_of_turn_hold_ms")

    def silence_for(self, kind: Completion) -> int:
        """The silence (ms after the last voiced frame) that ends a pause judged ``kind``."""
        if kind is Completion.COMPLETE:
            return self.end_of_turn_complete_ms
        if kind is Completion.UNSURE:
            return self.end_of_turn_unsure_ms
        if kind is Completion.STATEMENT:
            return self.end_of_turn_statement_ms
        return self.end_of_turn_hold_ms
