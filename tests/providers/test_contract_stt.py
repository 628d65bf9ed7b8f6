"""The speech-to-text contract, run against every implementation."""

from __future__ import annotations

import pytest

from fakes.server import FakeEndpoints
from media.espeak import synthesize_pcm16
from media.speech import SpeechToText, Transcript, Utterance
from tests.providers.engines import STT_ENGINES, make_stt


@pytest.fixture(params=STT_ENGINES)
def stt(request: pytest.FixtureRequest) -> SpeechToText:
    return make_stt(request.param, request)


def test_is_a_speech_to_text(stt: SpeechToText) -> None:
    assert isinstance(stt, SpeechToText)
    assert stt.name


async def test_transcribes_speech_to_text(stt: SpeechToText) -> None:
    language = getattr(stt, "language", "de")
    text = (
        "Hello, this is a test." if language == "en" else "Guten Tag, ich möchte meinen Zählerstand melden."
    )
    result = await stt.transcribe(Utterance(synthesize_pcm16(text, voice=language)))
    assert isinstance(result, Transcript)
    assert result.text.strip()
    assert result.text == result.text.strip()


async def test_a_blip_is_no_speech_and_costs_no_request(
    stt: SpeechToText, request: pytest.FixtureRequest
) -> None:
    result = await stt.transcribe(Utterance(b"\x00\x00" * 400))  # 50 ms
    assert result.text == ""
    if "fake" in request.fixturenames:
        fake: FakeEndpoints = request.getfixturevalue("fake")
        assert fake.behaviour.requests_to("stt") == []
