"""The text-to-speech contract, run against every implementation."""

from __future__ import annotations

import pytest

from media.speech import TextToSpeech
from tests.providers.engines import TTS_ENGINES, make_tts


@pytest.fixture(params=TTS_ENGINES)
def tts(request: pytest.FixtureRequest) -> TextToSpeech:
    return make_tts(request.param, request)


def test_is_a_text_to_speech(tts: TextToSpeech) -> None:
    assert isinstance(tts, TextToSpeech)
    assert tts.name
    assert "ulaw_8000" in tts.cache_key


async def test_streams_ulaw_in_chunks(tts: TextToSpeech) -> None:
    chunks = [
        c
        async for c in tts.synthesize("Guten Tag, hier sind die Stadtwerke Musterstadt. Wie kann ich helfen?")
    ]
    audio = b"".join(chunks)
    assert len(chunks) > 1
    assert all(chunks)
    assert len(audio) > 8000  # more than a second of speech at 8000 bytes/s
    assert not audio.startswith((b"RIFF", b"ID3", b"{"))  # headerless μ-law, nothing to transcode


async def test_longer_text_gives_longer_audio(tts: TextToSpeech) -> None:
    short = b"".join([c async for c in tts.synthesize("Ja.")])
    long = b"".join(
        [c async for c in tts.synthesize("Ja, das kann ich gern für Sie erledigen, einen Moment bitte.")]
    )
    assert len(long) > len(short)


async def test_consumer_may_stop_early(tts: TextToSpeech) -> None:
    stream = tts.synthesize(
        "Ein ziemlich langer Satz, der nach dem ersten Stück abgebrochen wird, wie beim Unterbrechen."
    )
    assert await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
