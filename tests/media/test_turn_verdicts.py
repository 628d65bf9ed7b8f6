"""The detector's per-pause verdict API on the stream clock: the judge's words decide how long a pause may be.

Verdicts arrive ``STT_MS`` of stream time after each ``SpeechPaused``, as a transcript would; nothing here
reads a wall clock, so every end-of-turn time is exact to the 20 ms frame.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from media.endpointing import Completion, Verdict, judge_turn
from media.errors import ConfigError
from media.turns import SpeechEnded, SpeechPaused, TurnConfig, TurnDetector, TurnEvent
from tests.support.audio import duration_ms, frames, german_speech_ulaw, silence_ulaw

STT_MS = 100
FIRST, REST = "Ich rufe an wegen", "der Abschlagszahlung für März."


def hesitating_turn(pause_ms: int) -> tuple[bytes, int]:
    """An incomplete first part, a pause, the rest; returns the audio and where the speech really ends."""
    first, rest = german_speech_ulaw(FIRST), german_speech_ulaw(REST)
    audio = silence_ulaw(300) + first + silence_ulaw(pause_ms) + rest + silence_ulaw(2500)
    return audio, 300 + duration_ms(first) + pause_ms + duration_ms(rest)


def drive(
    audio: bytes, judge: Callable[[int], Verdict | None], config: TurnConfig | None = None
) -> list[TurnEvent]:
    """Push the audio; ``judge(speech_end_ms)`` is asked STT_MS after each pause and may return nothing."""
    detector = TurnDetector(config or TurnConfig())
    pending: list[tuple[int, int]] = []
    events: list[TurnEvent] = []
    for frame in frames(audio):
        while pending and pending[0][0] <= detector.now_ms:
            _, speech_end = pending.pop(0)
            verdict = judge(speech_end)
            if verdict is not None:
                events += detector.judge_pause(verdict, speech_end)
        new = detector.push(frame)
        events += new
        pending += [(e.at_ms + STT_MS, e.speech_end_ms) for e in new if isinstance(e, SpeechPaused)]
    return events


def ended(events: list[TurnEvent]) -> list[SpeechEnded]:
    return [e for e in events if isinstance(e, SpeechEnded)]


def test_an_incomplete_first_part_holds_through_a_900_ms_pause() -> None:
    audio, speech_end = hesitating_turn(900)
    first_end = 300 + duration_ms(german_speech_ulaw(FIRST))

    def words_until(ms: int) -> Verdict:
        return judge_turn(FIRST if ms < speech_end - 200 else f"{FIRST} {REST}")

    turns = ended(drive(audio, words_until))
    assert len(turns) == 1  # one turn, the whole sentence
    assert turns[0].utterance.duration_s * 1000 > speech_end - first_end
    assert turns[0].verdict is Completion.COMPLETE
    assert turns[0].reason.startswith("complete: ")
    # silence alone (today's 500 ms) cuts the same audio in two: the test above can fail
    assert len(ended(drive(audio, lambda _: None))) == 2


def test_a_complete_verdict_ends_the_turn_when_it_arrives() -> None:
    speech = german_speech_ulaw("Wann haben Sie geöffnet?")
    audio, speech_end = silence_ulaw(300) + speech + silence_ulaw(1000), 300 + duration_ms(speech)
    turns = ended(drive(audio, lambda _: Verdict(Completion.COMPLETE, "question mark")))
    assert len(turns) == 1
    turn = turns[0]
    config = TurnConfig()
    # SpeechPaused at eager_eot_ms, the verdict STT_MS later; complete_ms has passed by then
    assert config.end_of_turn_complete_ms <= config.eager_eot_ms + STT_MS
    assert turn.at_ms == turn.speech_end_ms + config.eager_eot_ms + STT_MS
    assert turn.waited_ms == turn.at_ms - turn.speech_end_ms
    assert turn.reason == "complete: question mark"
    assert turn.speech_end_ms >= speech_end


@pytest.mark.parametrize("kind", [Completion.UNSURE, Completion.INCOMPLETE])
def test_longer_verdicts_wait_their_silence_on_the_stream_clock(kind: Completion) -> None:
    config = TurnConfig()
    audio = german_speech_ulaw("Ich rufe an") + silence_ulaw(config.end_of_turn_hold_ms + 500)
    turns = ended(drive(audio, lambda _: Verdict(kind, "test")))
    assert len(turns) == 1
    assert turns[0].waited_ms == config.silence_for(kind)
    assert turns[0].at_ms == turns[0].speech_end_ms + config.silence_for(kind)


def test_the_hold_of_the_current_pause_is_readable_for_the_log() -> None:
    config = TurnConfig()
    detector = TurnDetector(config)
    events = [e for f in frames(german_speech_ulaw(FIRST) + silence_ulaw(400)) for e in detector.push(f)]
    paused = [e for e in events if isinstance(e, SpeechPaused)][-1]
    assert detector.pause_hold_ms == config.end_of_turn_silence_ms
    assert detector.judge_pause(judge_turn(FIRST), paused.speech_end_ms) == []
    assert detector.pause_hold_ms == config.end_of_turn_hold_ms
    events = [e for f in frames(german_speech_ulaw(REST)) for e in detector.push(f)]
    assert detector.pause_hold_ms == config.end_of_turn_silence_ms  # new words: the verdict is gone


def test_without_a_verdict_the_default_silence_applies() -> None:
    audio = german_speech_ulaw("Ja, das stimmt.") + silence_ulaw(1000)
    turns = ended(drive(audio, lambda _: None))
    assert len(turns) == 1
    assert turns[0].waited_ms == TurnConfig().end_of_turn_silence_ms
    assert turns[0].verdict is None
    assert turns[0].reason == "silence, no verdict"


def test_a_verdict_on_words_the_caller_has_added_to_is_ignored() -> None:
    detector = TurnDetector(TurnConfig(eager_eot_ms=100))
    events = [e for f in frames(german_speech_ulaw(FIRST) + silence_ulaw(250)) for e in detector.push(f)]
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert paused
    events = [e for f in frames(german_speech_ulaw(REST)) for e in detector.push(f)]
    stale = Verdict(Completion.COMPLETE, "stale")
    assert detector.judge_pause(stale, paused[-1].speech_end_ms) == []
    assert detector.pause_hold_ms == TurnConfig().end_of_turn_silence_ms
    events = [e for f in frames(silence_ulaw(1000)) for e in detector.push(f)]
    turns = ended(events)
    assert len(turns) == 1
    assert turns[0].reason == "silence, no verdict"


def test_a_verdict_outside_a_turn_does_nothing() -> None:
    detector = TurnDetector(TurnConfig())
    detector.push(silence_ulaw(500))
    assert detector.judge_pause(Verdict(Completion.COMPLETE, "x"), 0) == []


def test_verdict_silences_must_grow_with_doubt() -> None:
    with pytest.raises(ConfigError):
        TurnConfig(end_of_turn_complete_ms=800, end_of_turn_unsure_ms=700)
