"""WebRTC VAD on real German speech and telephone noise, framed exactly as Twilio sends it."""

from __future__ import annotations

import pytest

from media.codec import ulaw_to_pcm16
from media.errors import ConfigError
from media.vad import VoiceActivityDetector, WebRtcVad
from tests.support.audio import frames, german_speech_ulaw, noise_ulaw, silence_ulaw


def voiced_share(ulaw: bytes, aggressiveness: int = 2) -> float:
    vad = WebRtcVad(aggressiveness)
    decisions = [vad.is_speech(ulaw_to_pcm16(f)) for f in frames(ulaw)]
    return sum(decisions) / len(decisions)


def test_webrtc_vad_satisfies_the_contract() -> None:
    assert isinstance(WebRtcVad(), VoiceActivityDetector)
    assert WebRtcVad().frame_ms == 20


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_speech_is_voiced(aggressiveness: int) -> None:
    speech = german_speech_ulaw("Ich möchte bitte meine Adresse ändern lassen.", level_db=-30)
    assert voiced_share(speech, aggressiveness) > 0.8


@pytest.mark.parametrize("color", ["white", "pink"])
def test_line_noise_is_not_voiced_after_the_first_frames(color: str) -> None:
    # The model calls the first ~80 ms of a fresh noise floor speech while it settles; then never.
    noise = noise_ulaw(3000, level_db=-45, color=color)
    vad = WebRtcVad(2)
    decisions = [vad.is_speech(ulaw_to_pcm16(f)) for f in frames(noise)]
    assert sum(decisions[5:]) <= 2


def test_digital_silence_is_not_voiced() -> None:
    assert voiced_share(silence_ulaw(1000)) == 0


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        WebRtcVad(4)
    with pytest.raises(ConfigError):
        WebRtcVad(2, frame_ms=25)
    with pytest.raises(ValueError, match="expected 320"):
        WebRtcVad().is_speech(b"\0" * 100)
