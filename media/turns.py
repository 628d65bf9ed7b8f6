"""Turn-taking: when the caller starts, interrupts, or has finished speaking, from 20 ms μ-law frames.

The detector is a pure function of the bytes it is given (stream time is bytes / 8 ms, never the wall
clock), so tests fast-forward minutes of audio in milliseconds and every decision is reproducible.

Per frame: decode (table lookup), frame power, an energy floor, the VAD, the echo gate, then a small state
machine. Caller speech = VAD voiced AND louder than the floor AND not explained by the bot's echo.

While the bot speaks, ``SpeechStarted`` comes after ``speech_confirm_ms`` so the session can duck the bot's
voice at once (the caller hears it drop after Twilio's short buffer drains), and the costly decision
("throw the answer away") waits for words or for ``barge_in_ms`` of speech: ``SpeechPaused`` offers the
overlap's words at the first pause, and ``confirm`` turns words that claim the floor into a ``BargeIn``.
A backchannel ends with ``SpeechDiscarded`` after only ``backchannel_gap_ms`` of silence, so the bot's
level is restored. When a discarded segment is followed within ``end_of_turn_silence_ms`` by a real
interruption, the utterance starts at the discarded segment, so "Moment, … ich hätte eine
Frage" reaches STT whole.

How long a pause may last before the turn ends depends on the words: ``SpeechPaused`` offers the utterance
at ``eager_eot_ms``; when its transcript is back, the session asks ``media.endpointing.judge_turn`` and hands
the verdict to ``judge_pause``, which sets this pause's silence (short when complete, up to
``end_of_turn_hold_ms`` when the sentence is unfinished). New speech drops the verdict; without one,
``end_of_turn_silence_ms`` applies as before.

The knobs and their measured defaults are ``TurnConfig`` (``media.turn_config``), re-exported here with the
events (``media.turn_events``).
"""

from __future__ import annotations

from collections import deque

from media.codec import FRAME_BYTES, FRAME_MS, ulaw_to_pcm16
from media.echo import EchoGate, pcm16_level_db
from media.endpointing import Verdict
from media.errors import ConfigError
from media.speech import Utterance
from media.turn_config import TurnConfig
from media.turn_events import (
    BargeIn,
    SpeechDiscarded,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    TurnEvent,
)
from media.vad import VoiceActivityDetector, WebRtcVad

__all__ = [
    "BargeIn",
    "SpeechDiscarded",
    "SpeechEnded",
    "SpeechPaused",
    "SpeechStarted",
    "TurnConfig",
    "TurnDetector",
    "TurnEvent",
]


def _frames(ms: int) -> int:
    return -(-ms // FRAME_MS)  # round up: a 250 ms minimum needs 13 frames, not 12


class TurnDetector:
    """One per call. Not thread-safe; cheap enough to run inline in the call's receive loop."""

    def __init__(self, config: TurnConfig, vad: VoiceActivityDetector | None = None) -> None:
        self.config = config
        self.vad: VoiceActivityDetector = vad or WebRtcVad(config.vad_aggressiveness)
        if self.vad.frame_ms != FRAME_MS:
            raise ConfigError(
                f"the turn detector works on {FRAME_MS} ms frames, the VAD on {self.vad.frame_ms}"
            )
        self.echo = EchoGate(config.echo)
        self._confirm = _frames(config.speech_confirm_ms)
        self._preroll = _frames(config.preroll_ms)
        self._eot = _frames(config.end_of_turn_silence_ms)
        self._gap = _frames(config.backchannel_gap_ms)
        self._eager = (
            _frames(config.eager_eot_ms) if 0 < config.eager_eot_ms < config.end_of_turn_silence_ms else 0
        )
        self._min = _frames(config.min_utterance_ms)
        self._max = _frames(config.max_utterance_ms)
        self._barge = _frames(config.barge_in_ms)
        keep = self._preroll + self._confirm + self._barge + self._gap + self._eot + 2
        self._history: deque[bytes] = deque(maxlen=keep)  # PCM16 frames, the newest is frame _count - 1
        self._carry = b""
        self._bytes = 0
        self._count = 0
        self._bot_speaking = False
        self._verdict: Verdict | None = None
        self._pause_eot: int | None = None  # silence frames that end this pause, from the verdict
        self._clear_segment()
        self._discarded: tuple[int, int] | None = None  # (utterance start, speech end) frames, for merging

    # --- what the session sets and reads ---------------------------------------------------------------
    @property
    def bot_speaking(self) -> bool:
        return self._bot_speaking

    @bot_speaking.setter
    def bot_speaking(self, value: bool) -> None:
        """Keep this True while playback is merely paused; set False when it finished or was cleared.

        On False, reference audio queued after now is forgotten: after a ``clear`` it will never play,
        and keeping it would hide the caller's next words as "echo".
        """
        if self._bot_speaking and not value:
            self.echo.drop_unplayed(self._count)
        self._bot_speaking = value

    @property
    def now_ms(self) -> int:
        return self._bytes // 8

    @property
    def pause_hold_ms(self) -> int:
        """The silence the current pause needs to end the turn: the verdict's, else the default."""
        if self._verdict is None:
            return self.config.end_of_turn_silence_ms
        return self.config.silence_for(self._verdict.kind)

    @property
    def pause_verdict(self) -> Verdict | None:
        """The verdict ``judge_pause`` applied to the current pause; None once the caller speaks on."""
        return self._verdict

    def play_reference(self, ulaw: bytes) -> None:
        self.echo.add_reference(ulaw, self._count)

    def reset(self) -> None:
        """Forget the current segment; speech that continues starts a new one (with pre-roll)."""
        self._clear_segment()
        self._discarded = None

    def judge_pause(self, verdict: Verdict, speech_end_ms: int) -> list[TurnEvent]:
        """Apply the end-of-turn judge's ``verdict`` on the words up to ``speech_end_ms`` to this pause.

        Call it when the transcript of a ``SpeechPaused`` utterance arrives, with that event's
        ``speech_end_ms``. The pause then ends the turn after ``config.silence_for(verdict.kind)`` of silence
        instead of ``end_of_turn_silence_ms``; if that much silence has already passed, the returned list
        holds the ``SpeechEnded`` (decided now, on the stream clock). A verdict about words the caller has
        since added to (speech resumed), or about an ended turn, is stale and ignored: it returns [].
        """
        if (
            not self._in_segment
            or (self._last_voiced + 1) * FRAME_MS != speech_end_ms
            or self._silence == 0
            or (self._bot_speaking and not self._barged)
        ):
            return []
        self._verdict = verdict
        self._pause_eot = _frames(self.config.silence_for(verdict.kind))
        events: list[TurnEvent] = []
        if self._silence >= self._pause_eot:
            self._finish(self._count - 1, events, backchannel=False)
        return events

    def push(self, ulaw: bytes) -> list[TurnEvent]:
        self._bytes += len(ulaw)
        data = self._carry + ulaw if self._carry else ulaw
        whole = len(data) // FRAME_BYTES * FRAME_BYTES
        self._carry = data[whole:]
        events: list[TurnEvent] = []
        for i in range(0, whole, FRAME_BYTES):
            self._frame(data[i : i + FRAME_BYTES], events)
        return events

    # --- per frame -----------------------------------------------------------------------------------------
    def _clear_segment(self) -> None:
        self._run = 0
        self._in_segment = False
        self._onset = 0
        self._last_voiced = 0
        self._silence = 0
        self._barged = False
        self._utt_start = 0
        self._utt: list[bytes] = []
        self._verdict = None
        self._pause_eot = None

    def _frame(self, ulaw: bytes, events: list[TurnEvent]) -> None:
        pcm = ulaw_to_pcm16(ulaw)
        level = pcm16_level_db(pcm)
        idx = self._count
        self._count += 1
        self._history.append(pcm)
        # Both the echo gate and the VAD see every frame: they learn the echo path and the noise floor from
        # the frames that are not speech. (Skipping the VAD below the energy floor starved its noise model,
        # and it then called the first louder noise burst speech.)
        voiced = self.vad.is_speech(pcm)
        echo = self.echo.is_echo(idx, level)
        caller = voiced and not echo and level > self.config.energy_floor_db
        if self._in_segment:
            self._utt.append(pcm)
            self._continue(idx, caller, events)
        elif caller:
            self._run += 1
            if self._run >= self._confirm:
                self._start(idx, events)
        else:
            self._run = 0

    def _start(self, idx: int, events: list[TurnEvent]) -> None:
        onset = idx + 1 - self._run
        start = onset - self._preroll
        if self._discarded is not None and onset - self._discarded[1] <= self._eot:
            start = min(start, self._discarded[0])
        start = max(start, idx + 1 - len(self._history))
        self._discarded = None
        self._in_segment, self._onset, self._last_voiced, self._silence = True, onset, idx, 0
        self._utt_start = start
        self._utt = list(self._history)[start - (idx + 1) :] if start <= idx else []
        events.append(SpeechStarted(at_ms=onset * FRAME_MS))
        self._check_barge_in(idx, events)

    def confirm(self, speech_end_ms: int, reason: str, *, claims_floor: bool = False) -> list[TurnEvent]:
        """The words of the speech over the bot, up to ``speech_end_ms``, claim the floor: a ``BargeIn`` now.

        Call it with a ``SpeechPaused``'s ``speech_end_ms`` once its words are judged an interruption. The
        segment then ends as a turn, like one confirmed by duration. If the segment was already discarded
        as a backchannel (the words came after ``backchannel_gap_ms``) while the bot still speaks, the
        interruption still stands (the bot falls silent) but those words are no turn any more. Returns []
        when the verdict is stale: the speech was already confirmed, or the bot stopped speaking.
        """
        if not self._bot_speaking:
            return []
        at_ms = self._count * FRAME_MS
        if self._in_segment and not self._barged and (self._last_voiced + 1) * FRAME_MS >= speech_end_ms:
            self._barged = True
            return [BargeIn(at_ms, self._onset * FRAME_MS, reason, claims_floor)]
        discarded = self._discarded
        if not self._in_segment and discarded is not None and discarded[1] * FRAME_MS == speech_end_ms:
            onset_ms = discarded[0] * FRAME_MS + self.config.preroll_ms
            return [BargeIn(at_ms, onset_ms, f"{reason} (after the backchannel gap)", claims_floor)]
        return []

    def _check_barge_in(self, idx: int, events: list[TurnEvent]) -> None:
        if self._bot_speaking and not self._barged and idx + 1 - self._onset >= self._barge:
            self._barged = True
            events.append(BargeIn((idx + 1) * FRAME_MS, self._onset * FRAME_MS))

    def _continue(self, idx: int, caller: bool, events: list[TurnEvent]) -> None:
        if caller:
            self._last_voiced, self._silence = idx, 0
            self._verdict, self._pause_eot = None, None  # the words changed: the verdict was on fewer
            self._check_barge_in(idx, events)
        else:
            self._silence += 1
        backchannel_watch = self._bot_speaking and not self._barged
        if (
            self._eager and self._silence == self._eager and self._last_voiced + 1 - self._onset >= self._min
        ):  # over the bot too: its words tell a "mhm" from a "Stopp" (``confirm``)
            speech_end = (self._last_voiced + 1) * FRAME_MS
            events.append(SpeechPaused((idx + 1) * FRAME_MS, self._utterance(), speech_end))
        limit = self._eot if self._pause_eot is None else self._pause_eot
        if backchannel_watch:
            limit = self._gap
        if self._silence >= limit:
            self._finish(idx, events, backchannel=backchannel_watch)
        elif idx + 1 - self._onset >= self._max:
            self._finish(idx, events, backchannel=False, reason="max utterance")

    def _utterance(self) -> Utterance:
        """The segment up to its last voiced frame, pre-roll included."""
        pcm = b"".join(self._utt[: len(self._utt) - self._silence])
        return Utterance(pcm.ljust(1600, b"\0"))  # STT APIs reject < 0.1 s; only reachable with tiny configs

    def _finish(self, idx: int, events: list[TurnEvent], *, backchannel: bool, reason: str = "") -> None:
        voiced_frames = self._last_voiced + 1 - self._onset
        utterance = self._utterance()
        at_ms = (idx + 1) * FRAME_MS
        speech_end = (self._last_voiced + 1) * FRAME_MS
        verdict = self._verdict
        if not reason:
            reason = f"{verdict.kind}: {verdict.reason}" if verdict else "silence, no verdict"
        if backchannel or voiced_frames < self._min:
            events.append(SpeechDiscarded(at_ms, voiced_frames * FRAME_MS, utterance))
            remembered = (self._utt_start, self._last_voiced + 1) if backchannel else None
            self._clear_segment()
            self._discarded = remembered
        else:
            kind = verdict.kind if verdict else None
            events.append(SpeechEnded(at_ms, utterance, speech_end, reason, at_ms - speech_end, kind))
            self._clear_segment()
