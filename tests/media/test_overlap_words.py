"""Speech over the bot: the German backchannel rule, the ducking table and the detector's ``confirm``."""

from __future__ import annotations

import numpy as np
import pytest

from media.backchannels import Overlap, judge_overlap
from media.codec import ulaw_to_array
from media.ducking import DUCK_DB, duck
from media.turns import BargeIn, SpeechDiscarded, SpeechEnded, SpeechPaused, TurnConfig, TurnDetector
from tests.support.audio import duration_ms, frames, german_speech_ulaw, silence_ulaw

BACKCHANNEL_TRANSCRIPTS = [
    "Ja.", "Jaja.", "Ja, ja.", "Mhm.", "Mm-hmm.", "Hm.", "Genau.", "Okay.", "OK", "Richtig.", "Stimmt.",
    "Klar.", "Alles klar.", "Aha.", "Ach so.", "In Ordnung.", "Ja, genau.",
]  # fmt: skip
INTERRUPTION_TRANSCRIPTS = [
    "Stopp.", "Stop!", "Moment.", "Moment, ich habe eine Frage.", "Nein.", "Nein, das stimmt nicht.",
    "Entschuldigung, aber", "Halt.", "Was kostet das?", "Ja, aber ich wollte etwas anderes.", "Alles.",
    "ja ja ja genau ja",
]  # fmt: skip


@pytest.mark.parametrize("text", BACKCHANNEL_TRANSCRIPTS)
def test_backchannels_are_told_from_interruptions(text: str) -> None:
    verdict = judge_overlap(text)
    assert verdict is not None
    assert verdict.kind is Overlap.BACKCHANNEL, verdict


@pytest.mark.parametrize("text", INTERRUPTION_TRANSCRIPTS)
def test_stop_words_and_content_interrupt(text: str) -> None:
    verdict = judge_overlap(text)
    assert verdict is not None
    assert verdict.kind is Overlap.INTERRUPTION, verdict


def test_only_stop_words_claim_the_floor_and_no_words_is_no_verdict() -> None:
    stopp, content = judge_overlap("Stopp."), judge_overlap("Was muss ich tun?")
    assert stopp is not None
    assert stopp.claims_floor
    assert content is not None
    assert not content.claims_floor
    assert judge_overlap("") is None
    assert judge_overlap(" ... ") is None


def test_ducking_lowers_the_level_by_the_stated_amount() -> None:
    speech = german_speech_ulaw("Gerne erkläre ich Ihnen unsere Tarife.")
    loud, quiet = (ulaw_to_array(a).astype(np.float64) for a in (speech, duck(speech)))
    drop = 20 * np.log10(np.sqrt((quiet**2).mean()) / np.sqrt((loud**2).mean()))
    assert drop == pytest.approx(-DUCK_DB, abs=0.5)
    assert len(duck(speech)) == len(speech)


CONFIG = TurnConfig()
BOT_SPEECH_MS = 20_000


def _over_the_bot(detector: TurnDetector, audio: bytes) -> list[object]:
    detector.bot_speaking = True  # no reference: the plain VAD hears the caller
    return [e for f in frames(audio) for e in detector.push(f)]


def test_a_stopp_shorter_than_barge_in_ms_is_offered_and_confirmed_by_its_words() -> None:
    stopp = german_speech_ulaw("Stopp.")
    assert duration_ms(stopp) < CONFIG.barge_in_ms  # duration alone would call it a backchannel
    detector = TurnDetector(CONFIG)
    events = _over_the_bot(detector, silence_ulaw(500) + stopp + silence_ulaw(CONFIG.eager_eot_ms + 40))
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(paused) == 1  # over the bot too, the first pause offers the words
    assert not [e for e in events if isinstance(e, BargeIn | SpeechDiscarded)]
    [barge] = detector.confirm(paused[0].speech_end_ms, '"stopp" claims the floor', claims_floor=True)
    assert isinstance(barge, BargeIn)
    assert barge.claims_floor
    assert barge.at_ms - barge.onset_ms < CONFIG.barge_in_ms
    assert detector.confirm(paused[0].speech_end_ms, "again") == []  # confirmed once
    rest = [e for f in frames(silence_ulaw(CONFIG.end_of_turn_silence_ms)) for e in detector.push(f)]
    assert [type(e) for e in rest] == [SpeechEnded]  # the interruption is a turn of its own


def test_words_after_the_backchannel_gap_still_interrupt_but_stale_ones_do_not() -> None:
    stopp = german_speech_ulaw("Stopp.")
    detector = TurnDetector(CONFIG)
    events = _over_the_bot(detector, silence_ulaw(500) + stopp + silence_ulaw(CONFIG.backchannel_gap_ms + 40))
    [paused] = [e for e in events if isinstance(e, SpeechPaused)]
    assert [type(e) for e in events if isinstance(e, SpeechDiscarded)] == [SpeechDiscarded]
    assert detector.confirm(paused.speech_end_ms - 20, "other words") == []  # not this segment's words
    [late] = detector.confirm(paused.speech_end_ms, "content")
    assert isinstance(late, BargeIn)
    assert "after the backchannel gap" in late.reason
    detector.bot_speaking = False
    assert detector.confirm(paused.speech_end_ms, "content") == []  # the bot is silent: nothing to stop
