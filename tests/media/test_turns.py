"""Turn-taking on real German speech, fast-forwarded: the detector only knows time from byte counts.

Tolerances are stated per test. Ground truth comes from where each clip is placed in the mix; the clips are
trimmed to their first and last 10 ms window above -45 dBFS, so truth is accurate to one 10 ms window.
"""

from __future__ import annotations

import dataclasses

import pytest

from media.errors import ConfigError
from media.turns import (
    BargeIn,
    SpeechDiscarded,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    TurnConfig,
    TurnDetector,
    TurnEvent,
)
from tests.support.audio import (
    BACKCHANNELS,
    Track,
    cough_ulaw,
    duration_ms,
    echo_of,
    frames,
    german_speech_ulaw,
    mix,
    noise_ulaw,
    silence_ulaw,
)

CFG = TurnConfig(eager_eot_ms=0)
"""The decision tests below look at final decisions; speculative pauses have tests of their own."""
SENTENCE = "Guten Tag, ich möchte meine Rechnung prüfen. Sie ist viel zu hoch, und ich verstehe nicht warum."
BOT_TEXT = (
    "Ihre Rechnung über neunundvierzig Euro wurde am dritten März verschickt. "
    "Möchten Sie eine Kopie per E-Mail erhalten?"
)
INTERRUPTION = "Nein, ich möchte lieber mit einem Mitarbeiter sprechen."


def bot_audio() -> bytes:
    return german_speech_ulaw(BOT_TEXT, pitch=35)  # a lower voice than the caller's


def listen(inbound: bytes, config: TurnConfig = CFG) -> list[TurnEvent]:
    detector = TurnDetector(config)
    return [e for f in frames(inbound) for e in detector.push(f)]


def call_with_bot(
    inbound: bytes,
    bot: bytes,
    bot_at_ms: int,
    *,
    lead_ms: int = 200,
    reference: bool = True,
    detector: TurnDetector | None = None,
) -> list[TurnEvent]:
    """Play the session: bot audio sent ``lead_ms`` ahead of real time, ``bot_speaking`` while it plays."""
    detector = detector or TurnDetector(CFG)
    bot_frames = list(frames(bot))
    start, lead = bot_at_ms // 20, lead_ms // 20
    events: list[TurnEvent] = []
    for i, frame in enumerate(frames(inbound)):
        playing = start <= i < start + len(bot_frames)
        if playing != detector.bot_speaking:
            detector.bot_speaking = playing
        if reference and i == start:
            for f in bot_frames[: lead + 1]:
                detector.play_reference(f)
        elif reference and playing and i - start + lead < len(bot_frames):
            detector.play_reference(bot_frames[i - start + lead])
        events.extend(detector.push(frame))
    return events


def of(kind: type[TurnEvent], events: list[TurnEvent]) -> list[TurnEvent]:
    return [e for e in events if isinstance(e, kind)]


# --- listening: segment boundaries ---


@pytest.mark.parametrize("noise_db", [None, -50.0, -45.0])
def test_sentence_boundaries_within_tolerance(noise_db: float | None) -> None:
    speech = german_speech_ulaw(SENTENCE)
    inbound = silence_ulaw(1000) + speech + silence_ulaw(1500)
    if noise_db is not None:
        inbound = mix(noise_ulaw(duration_ms(inbound), noise_db), inbound)
    events = listen(inbound)
    truth_end = 1000 + duration_ms(speech)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]  # the pauses at "," and "." do not split
    started, ended = events
    assert isinstance(started, SpeechStarted)
    assert isinstance(ended, SpeechEnded)
    assert abs(started.at_ms - 1000) <= 40  # onset: two frames
    assert -40 <= ended.speech_end_ms - truth_end <= 160  # end: VAD hangover in noise
    assert ended.at_ms - ended.speech_end_ms == CFG.end_of_turn_silence_ms
    # pre-roll: the utterance starts 300 ms before the onset, so the first syllable is whole
    expected_s = (ended.speech_end_ms - started.at_ms + CFG.preroll_ms) / 1000
    assert ended.utterance.duration_s == pytest.approx(expected_s, abs=0.021)
    assert ended.utterance.wav_bytes()[:4] == b"RIFF"


def test_two_turns_separated_by_a_long_pause() -> None:
    first, second = german_speech_ulaw("Ja, das stimmt."), german_speech_ulaw("Und noch eine Frage.")
    events = listen(silence_ulaw(300) + first + silence_ulaw(1500) + second + silence_ulaw(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded] * 2


def test_short_answer_is_a_turn_when_the_bot_is_silent() -> None:
    events = listen(silence_ulaw(500) + german_speech_ulaw("ja") + silence_ulaw(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_click_shorter_than_min_utterance_is_discarded() -> None:
    events = listen(silence_ulaw(500) + cough_ulaw(100, level_db=-15) + silence_ulaw(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechDiscarded]
    discarded = events[1]
    assert isinstance(discarded, SpeechDiscarded)
    assert discarded.duration_ms < CFG.min_utterance_ms


def test_max_utterance_forces_an_end() -> None:
    config = dataclasses.replace(CFG, max_utterance_ms=2000)
    events = listen(silence_ulaw(500) + german_speech_ulaw(SENTENCE) + silence_ulaw(1000), config)
    ended = of(SpeechEnded, events)
    assert ended
    first = ended[0]
    assert isinstance(first, SpeechEnded)
    assert first.at_ms == 500 + 2000
    assert first.utterance.duration_s == pytest.approx((2000 + CFG.preroll_ms) / 1000, abs=0.021)


def test_chunking_does_not_change_decisions() -> None:
    inbound = mix(noise_ulaw(5000, -50), Track(german_speech_ulaw("Hallo, hören Sie mich?"), 700))
    detector = TurnDetector(CFG)
    odd = [e for i in range(0, len(inbound), 77) for e in detector.push(inbound[i : i + 77])]
    assert odd == listen(inbound)
    assert detector.now_ms == duration_ms(inbound)


# --- while the bot speaks: echo, backchannels, barge-in ---

ECHO_PATHS = [(0, 6.0), (100, 6.0), (300, 6.0), (200, 12.0), (150, 20.0), (300, 30.0)]


@pytest.mark.parametrize(("delay_ms", "attenuation_db"), ECHO_PATHS)
def test_echo_of_the_bot_is_not_speech(delay_ms: int, attenuation_db: float) -> None:
    bot = bot_audio()
    echo = echo_of(bot, delay_ms=delay_ms, attenuation_db=attenuation_db)
    inbound = mix(noise_ulaw(duration_ms(bot) + 2000, -55), Track(echo, 500))
    assert call_with_bot(inbound, bot, 500) == []


@pytest.mark.parametrize("word", [*BACKCHANNELS, "jaja", "alles klar", "cough", "noise burst"])
@pytest.mark.parametrize("echo_path", [None, (100, 6.0), (300, 20.0)])
def test_backchannels_coughs_and_noise_do_not_barge_in(
    word: str, echo_path: tuple[int, float] | None
) -> None:
    bot = bot_audio()
    if word == "cough":
        clip = cough_ulaw()
    elif word == "noise burst":
        clip = noise_ulaw(300, -25, color="white", seed=5)
    else:
        clip = german_speech_ulaw(word)
    tracks: list[Track | bytes] = [noise_ulaw(duration_ms(bot) + 2000, -55), Track(clip, 3000)]
    if echo_path:
        tracks.append(Track(echo_of(bot, delay_ms=echo_path[0], attenuation_db=echo_path[1]), 500))
    events = call_with_bot(mix(*tracks), bot, 500)
    assert not of(BargeIn, events)
    assert not of(SpeechEnded, events)
    # Each SpeechStarted is answered by SpeechDiscarded soon after the clip ends, so the bot resumes. An
    # echo frame at the clip's end may be taken for the caller and extend it by a frame or two.
    assert len(of(SpeechStarted, events)) == len(of(SpeechDiscarded, events))
    for e in of(SpeechDiscarded, events):
        assert e.at_ms <= 3000 + duration_ms(clip) + CFG.backchannel_gap_ms + 350


@pytest.mark.parametrize("caller_at_ms", [2500, 4000])
def test_on_a_quiet_line_an_interruption_still_barges_in_and_mhm_does_not(caller_at_ms: int) -> None:
    """A quiet handset line (-70 dBFS, no echo) lets the echo gate skip its estimates once it knows the echo
    is faint; a caller who then speaks over the bot must still be heard, and a backchannel still not."""
    bot = bot_audio()
    for clip, barges in ((german_speech_ulaw(INTERRUPTION), 1), (german_speech_ulaw("mhm"), 0)):
        inbound = mix(noise_ulaw(duration_ms(bot) + 4000, -70), Track(clip, caller_at_ms))
        detector = TurnDetector(CFG)
        events = call_with_bot(inbound, bot, 500, detector=detector)
        assert len(of(BargeIn, events)) == barges
        assert detector.echo.erl_db <= -40.0
        if barges:
            assert of(BargeIn, events)[0].at_ms - caller_at_ms <= CFG.barge_in_ms + 300


@pytest.mark.parametrize("echo_path", [None, *ECHO_PATHS])
@pytest.mark.parametrize("caller_at_ms", [2500, 4000])
def test_real_interruption_barges_in(echo_path: tuple[int, float] | None, caller_at_ms: int) -> None:
    bot = bot_audio()
    caller = german_speech_ulaw(INTERRUPTION)
    tracks: list[Track | bytes] = [noise_ulaw(duration_ms(bot) + 4000, -55), Track(caller, caller_at_ms)]
    if echo_path:
        tracks.append(Track(echo_of(bot, delay_ms=echo_path[0], attenuation_db=echo_path[1]), 500))
    events = call_with_bot(mix(*tracks), bot, 500)
    barge = of(BargeIn, events)
    assert len(barge) == 1
    # Stated budget: barge_in_ms after the onset, plus up to 300 ms while an echo 12 dB down or weaker masks
    # the caller, plus up to 1100 ms when the echo is only 6 dB down (the caller shows in the bot's gaps).
    slack = 1100 if echo_path and echo_path[1] <= 6 else 300
    assert barge[0].at_ms - caller_at_ms <= CFG.barge_in_ms + slack
    # The session stops feeding bot audio at SpeechStarted: what the caller perceives as "the bot stopped".
    first_start = of(SpeechStarted, events)[0]
    assert first_start.at_ms - caller_at_ms <= (120 if not echo_path or echo_path[1] > 6 else 800)
    ended = of(SpeechEnded, events)
    assert len(ended) == 1
    assert isinstance(ended[0], SpeechEnded)
    assert ended[0].utterance.duration_s > 2.0  # the whole interruption reaches STT


def test_no_reference_means_plain_vad_barge_in() -> None:
    bot = bot_audio()
    inbound = mix(silence_ulaw(duration_ms(bot) + 3000), Track(german_speech_ulaw(INTERRUPTION), 2000))
    events = call_with_bot(inbound, bot, 500, reference=False)
    assert [type(e) for e in events] == [SpeechStarted, BargeIn, SpeechEnded]


def test_backchannel_followed_by_interruption_keeps_both_in_the_utterance() -> None:
    bot = bot_audio()
    first, rest = german_speech_ulaw("Moment"), german_speech_ulaw("ich hätte noch eine Frage zur Rechnung.")
    at_rest = 2000 + duration_ms(first) + 400
    inbound = mix(silence_ulaw(duration_ms(bot) + 3000), Track(first, 2000), Track(rest, at_rest))
    events = call_with_bot(inbound, bot, 500, reference=False)
    assert [type(e) for e in events] == [SpeechStarted, SpeechDiscarded, SpeechStarted, BargeIn, SpeechEnded]
    ended = events[-1]
    assert isinstance(ended, SpeechEnded)
    assert ended.utterance.duration_s * 1000 >= ended.speech_end_ms - 2000


def test_clearing_playback_forgets_unplayed_reference() -> None:
    detector = TurnDetector(CFG)
    detector.bot_speaking = True
    detector.play_reference(bot_audio()[:16000])  # 2 s queued ahead, then the session clears
    detector.push(silence_ulaw(100))
    detector.bot_speaking = False
    speech = german_speech_ulaw(INTERRUPTION)
    events = [e for f in frames(speech + silence_ulaw(1000)) for e in detector.push(f)]
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


# --- configuration ---


def test_config_overrides_take_effect() -> None:
    config = TurnConfig(barge_in_ms=600, energy_floor_db=-60.5)
    assert config.barge_in_ms == 600
    assert config.energy_floor_db == -60.5
    assert config.end_of_turn_silence_ms == CFG.end_of_turn_silence_ms


@pytest.mark.parametrize(
    "bad",
    [
        {"min_utterance_ms": 50},
        {"vad_aggressiveness": 7},
        {"preroll_ms": -1},
        {"max_utterance_ms": 100},
    ],
)
def test_bad_config_is_a_config_error(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        TurnConfig(**bad)  # type: ignore[arg-type]


def test_pause_offers_exactly_the_utterance_the_end_of_turn_will_carry() -> None:
    inbound = german_speech_ulaw("Ich möchte bitte meinen Zählerstand durchgeben.") + silence_ulaw(900)
    events = listen(inbound, TurnConfig())
    paused = of(SpeechPaused, events)
    ended = of(SpeechEnded, events)
    assert len(paused) == 1
    assert len(ended) == 1
    assert isinstance(paused[0], SpeechPaused)
    assert isinstance(ended[0], SpeechEnded)
    assert paused[0].utterance.pcm16 == ended[0].utterance.pcm16
    assert paused[0].speech_end_ms == ended[0].speech_end_ms
    config = TurnConfig()
    assert paused[0].at_ms == paused[0].speech_end_ms + config.eager_eot_ms
    # Without a verdict, the rest of the silence fallback (400 ms at eager 100) hides the STT round-trip.
    assert ended[0].at_ms - paused[0].at_ms == config.end_of_turn_silence_ms - config.eager_eot_ms == 400


def test_a_pause_inside_a_turn_is_offered_but_the_turn_goes_on() -> None:
    first = german_speech_ulaw("Ich hätte gern einen Termin")
    second = german_speech_ulaw("am Dienstag um neun Uhr.")
    events = listen(first + silence_ulaw(350) + second + silence_ulaw(900), TurnConfig())
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(paused) == 2
    assert len(ended) == 1
    assert paused[0].utterance.pcm16 != ended[0].utterance.pcm16  # the speculative text must not be used
    assert paused[-1].utterance.pcm16 == ended[0].utterance.pcm16


def test_eager_pauses_can_be_switched_off() -> None:
    inbound = german_speech_ulaw("Wann haben Sie geöffnet?") + silence_ulaw(900)
    assert of(SpeechPaused, listen(inbound, TurnConfig(eager_eot_ms=0))) == []
