"""The fake transcriber answers with the words of the registered clips in the audio it was sent.

Driven through the production STT adapter and the real openai SDK, with utterances cut the way the turn
detector cuts them (PCM16 decoded from the μ-law the simulator sends).
"""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from fakes.clips import ClipRegistry
from fakes.server import FakeEndpoints
from media.codec import ulaw_to_array
from media.speech import Utterance
from media.stt_openai import OpenAISpeechToText
from tests.support.audio import german_speech_ulaw, noise_ulaw, silence_ulaw

FIRST, REST = "Ich rufe an wegen", "der Abschlagszahlung für den März."


def utterance(ulaw: bytes) -> Utterance:
    return Utterance(ulaw_to_array(ulaw).tobytes())


async def test_the_words_of_the_clips_in_the_audio_come_back(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    first, rest = german_speech_ulaw(FIRST), german_speech_ulaw(REST, pitch=60)
    fake.behaviour.clips.register(FIRST, first)
    fake.behaviour.clips.register(REST, rest)
    stt = OpenAISpeechToText(openai_client, max_attempts=1, timeout_s=10)
    lead = silence_ulaw(300)

    whole = await stt.transcribe(utterance(lead + first + silence_ulaw(900) + rest + silence_ulaw(100)))
    assert whole.text == f"{FIRST} {REST}"
    # the speculative transcript at the pause: only what was said before it
    prefix = await stt.transcribe(utterance(lead + first + silence_ulaw(200)))
    assert prefix.text == FIRST
    # cut inside the second clip: its first words only
    cut = await stt.transcribe(utterance(lead + first + silence_ulaw(900) + rest[: len(rest) * 6 // 10]))
    assert cut.text.startswith(f"{FIRST} der")
    assert len(cut.text) < len(whole.text)
    assert f"{FIRST} {REST}".startswith(cut.text)
    # order follows the audio, not the registration
    swapped = await stt.transcribe(utterance(lead + rest + silence_ulaw(500) + first))
    assert swapped.text == f"{REST} {FIRST}"


async def test_audio_without_a_registered_clip_gets_the_queue_as_before(
    fake: FakeEndpoints, openai_client: AsyncOpenAI
) -> None:
    stt = OpenAISpeechToText(openai_client, max_attempts=1, timeout_s=10)
    fake.behaviour.transcripts.append("Aus der Warteschlange.")
    noise = utterance(noise_ulaw(800, -30))
    assert (await stt.transcribe(noise)).text == "Aus der Warteschlange."  # nothing registered
    fake.behaviour.clips.register(FIRST, german_speech_ulaw(FIRST))
    assert (await stt.transcribe(noise)).text == fake.behaviour.default_transcript  # registered, not in it


def test_a_clip_that_could_not_be_found_again_is_refused() -> None:
    registry = ClipRegistry()
    with pytest.raises(ValueError, match="too short or too quiet"):
        registry.register("Stille", silence_ulaw(500))
    assert not registry
    assert registry.transcribe_wav(b"not a wav") is None


def test_a_clip_committed_in_two_pieces_gives_each_piece_its_own_words() -> None:
    """The realtime socket is committed at every pause: the second piece has no fingerprint of its own."""
    words = "Ich möchte meinen Zählerstand melden."
    clip = german_speech_ulaw(words)
    registry = ClipRegistry()
    registry.register(words, clip)
    heard = ulaw_to_array(silence_ulaw(300) + clip).tobytes()
    cut = len(heard) // 2 // 2 * 2  # a whole sample inside the clip
    first = registry.transcribe_tail(heard[:cut], cut)
    second = registry.transcribe_tail(heard, len(heard) - cut)
    assert first
    assert second
    assert f"{first} {second}" == words
    assert registry.transcribe_tail(heard + ulaw_to_array(silence_ulaw(500)).tobytes(), 8000) is None
