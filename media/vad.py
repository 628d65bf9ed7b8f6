"""Voice activity detection behind a one-method contract, so a trained model can replace WebRTC's later.

WebRTC's VAD is a small Gaussian-mixture model over six sub-bands, trained on speech; measured here it
costs ~2.5 µs per 20 ms frame at 8 kHz (``bench/audio_path.py``), about 0.01 % of a core per call, so no
cheaper gate is needed in front of it for CPU. The turn detector still ANDs it with an energy floor,
because the model's noise estimate needs a few frames to settle and flags faint line hiss at the very
start of a stream; it calls the model on every frame so that noise estimate keeps adapting.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import webrtcvad

from media.errors import ConfigError
from media.speech import SAMPLE_RATE


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Classifies one frame of ``frame_ms`` of 8 kHz little-endian PCM16 as speech or not.

    Implementations may keep state between frames (noise estimates, hangover) and are used by one call
    only, from one thread.
    """

    frame_ms: int

    def is_speech(self, pcm16_frame: bytes) -> bool: ...


class WebRtcVad:
    """WebRTC's VAD. ``aggressiveness`` 0..3 trades missed speech (3) against noise taken for speech (0).

    The model has a built-in hangover: it keeps reporting speech for ~100 ms after speech ends (measured:
    a 400 ms "ja" is voiced for 500 ms), which the turn detector's defaults account for.
    """

    def __init__(self, aggressiveness: int = 2, frame_ms: int = 20) -> None:
        if aggressiveness not in range(4):
            raise ConfigError(f"VAD aggressiveness must be 0..3, got {aggressiveness}")
        if frame_ms not in (10, 20, 30):
            raise ConfigError(f"WebRTC VAD frames are 10, 20 or 30 ms, got {frame_ms}")
        self.frame_ms = frame_ms
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self._frame_bytes = SAMPLE_RATE * frame_ms // 1000 * 2

    def is_speech(self, pcm16_frame: bytes) -> bool:
        if len(pcm16_frame) != self._frame_bytes:
            raise ValueError(f"expected {self._frame_bytes} bytes of PCM16, got {len(pcm16_frame)}")
        return bool(self._vad.is_speech(pcm16_frame, SAMPLE_RATE))
