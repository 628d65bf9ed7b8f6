"""Sample-rate conversion for components that do not speak 8 kHz (16 kHz STT or VAD, 22/24 kHz TTS).

One ``Resampler`` per call and direction: soxr keeps filter state between chunks, so 20 ms frames join
without clicks, which a fresh one-shot ``soxr.resample`` per frame would not do.
"""

from __future__ import annotations

import numpy as np
import soxr


class Resampler:
    """Streaming PCM16 mono resampler; output length per chunk varies by a sample as the filter fills."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, pcm16: bytes) -> bytes:
        """Resample one chunk of little-endian PCM16; the filter delay (a few ms) is released by ``flush``."""
        if self.in_rate == self.out_rate:
            return pcm16
        out = self._stream.resample_chunk(np.frombuffer(pcm16, dtype="<i2"), last=False)
        return np.asarray(out, dtype="<i2").tobytes()

    def flush(self) -> bytes:
        """Drain what the filter still holds at the end of a stream; the resampler is spent afterwards."""
        if self.in_rate == self.out_rate:
            return b""
        out = self._stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        return np.asarray(out, dtype="<i2").tobytes()
